"""The warm CLI's connection with a CLI that exits at once (one that rejects ``--acp``, say): the
cause names the exit code every time, whichever of the connection's threads sees the end first."""

from __future__ import annotations

import collections

import pytest

from nh_assets.gemini.warm_cli.connection import CliExited, AcpConnection

pytestmark = pytest.mark.fast


def test_a_cli_that_exits_at_start_is_described_by_its_exit_code_every_time(tmp_path):
    causes = collections.Counter()
    for _ in range(30):  # the reader thread and the caller race for the exit: try it many times
        cli = AcpConnection(
            ["sh", "-c", "echo 'Unknown argument: acp' >&2; exit 1"],
            env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path), pass_fds=(), redact=lambda text: text,
        )
        try:
            with pytest.raises(CliExited) as raised:
                cli.initialize(10)
            causes[str(raised.value)] += 1
            assert cli.first_error_line() == "Unknown argument: acp"
        finally:
            cli.kill()
    assert causes == {"the CLI exited with code 1": 30}
