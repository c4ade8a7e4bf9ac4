"""A terminated run stops the waits of its steps running in threads (``nh_assets.cancellation``):
a child process under ``subprocesses.run`` is killed with its group and the step raises
``Cancelled``, which Dagster records as an interrupt; work that starts afterwards stops at once."""

from __future__ import annotations

import os
import threading
import time

import pytest

from nh_assets import cancellation, subprocesses

pytestmark = pytest.mark.fast


@pytest.fixture(autouse=True)
def fresh():
    cancellation.reset()
    yield
    cancellation.reset()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def test_cancel_all_kills_a_waiting_child_and_its_group_and_the_wait_raises_cancelled(tmp_path):
    pids = tmp_path / "pids"
    outcome: list[BaseException | object] = []

    def step() -> None:
        try:
            # A shell and a grandchild in its group, both sleeping far past the test.
            subprocesses.run(
                f"sleep 300 & echo $$ $! > {pids}; wait", shell=True, env={"PATH": "/usr/bin:/bin"},
                cwd=str(tmp_path), timeout_s=300,
            )
            outcome.append("returned")
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is tested
            outcome.append(exc)

    thread = threading.Thread(target=step)
    thread.start()
    deadline = time.monotonic() + 10
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    shell, grandchild = (int(p) for p in pids.read_text().split())
    started = time.monotonic()
    cancellation.cancel_all()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], cancellation.Cancelled)
    assert isinstance(outcome[0], KeyboardInterrupt)  # so no `except Exception` swallows it
    assert not _alive(shell) and not _alive(grandchild)


def test_a_wait_that_begins_after_the_cancellation_stops_at_once(tmp_path):
    cancellation.cancel_all()
    started = time.monotonic()
    with pytest.raises(cancellation.Cancelled):
        subprocesses.run(["sleep", "300"], env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path), timeout_s=300)
    assert time.monotonic() - started < 5


def test_without_a_cancellation_a_child_runs_to_its_end(tmp_path):
    done = subprocesses.run(["sh", "-c", "echo answer"], env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path), timeout_s=30)
    assert (done.returncode, done.stdout) == (0, "answer\n")
