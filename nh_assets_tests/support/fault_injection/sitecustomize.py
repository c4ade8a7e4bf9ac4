"""Test-only fault injection, loaded at interpreter start-up by the fault tests through PYTHONPATH.

Every process of a run (the CLI, the run worker, the step processes) starts Python afresh, so this
is how a test kills exactly the process doing one thing, at one point, with a real SIGKILL:

- ``NH_TEST_KILL_MID_WRITE=NAME``: the process writing artifact NAME's temporary file writes half
  of the bytes, syncs them, and kills itself;
- ``NH_TEST_KILL_AT_UNLINK=N``: the process kills itself instead of making its N-th unlink under
  ``NH_DATA_ROOT`` (retention removing files).

Without these variables it does nothing.
"""

import os
import signal

_MID_WRITE = os.environ.get("NH_TEST_KILL_MID_WRITE")
_AT_UNLINK = int(os.environ.get("NH_TEST_KILL_AT_UNLINK") or 0)

if _MID_WRITE:
    _write = os.write

    def _killing_write(fd, data):
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = ""
        if name.endswith(".partial") and f"/.{_MID_WRITE}." in name:
            _write(fd, bytes(data[: max(1, len(data) // 2)]))
            os.fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        return _write(fd, data)

    os.write = _killing_write

if _AT_UNLINK:
    import pathlib

    _unlink = pathlib.Path.unlink
    _root = os.environ.get("NH_DATA_ROOT", "/nonexistent")
    _count = [0]

    def _killing_unlink(self, missing_ok=False):
        if str(self).startswith(_root):
            _count[0] += 1
            if _count[0] == _AT_UNLINK:
                os.kill(os.getpid(), signal.SIGKILL)
        return _unlink(self, missing_ok=missing_ok)

    pathlib.Path.unlink = _killing_unlink
