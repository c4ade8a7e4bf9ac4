"""The warm CLI's connection with a CLI that exits at once (one that rejects ``--acp``, say): the
cause names the exit code every time, whichever of the connection's threads sees the end first;
and with a CLI that asks for a login on the protocol's channel: it is ended at once."""

from __future__ import annotations

import collections

import pytest

from nh_assets.gemini.warm_cli.connection import AcpConnection, CliExited, LoginRequired

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


# What 0.61.0 in ACP mode writes on stdout when its Google login cannot be refreshed (NO_BROWSER), then
# it reads codes from stdin for up to 5 minutes: the stand-in reads two lines and sleeps.
ASKS_FOR_A_LOGIN = (
    r"printf '\033[?1049h\033[2J\033[HPlease visit the following URL to authorize the application:\n\n"
    r"https://accounts.google.com/o/oauth2/v2/auth?x=1\n\n\033[1G\033[0JEnter the authorization code: ';"
    " read code; read code; sleep 300"
)


def test_a_cli_that_asks_for_a_login_is_ended_at_once(tmp_path):
    cli = AcpConnection(
        ["sh", "-c", ASKS_FOR_A_LOGIN], env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path), redact=lambda text: text,
    )
    try:
        with pytest.raises(LoginRequired):  # not TimeoutError: nobody is waited for
            cli.initialize(120)
        # The request can fail on its write to the killed CLI before the reader has seen the exit.
        assert cli.exited.wait(5)
        with pytest.raises(LoginRequired):
            cli.new_session(str(tmp_path), 120)
    finally:
        cli.kill()
