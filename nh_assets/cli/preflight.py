"""``nh preflight``: today's preflight verdicts (``nh_assets.preflight``) with the old exit code.

The checks are the module's own; this adds what scripts need: exit 30 when one fails (the
module's ``python -m`` entry point exits 1, kept for compatibility) and a JSON document.
"""

from __future__ import annotations

import os

from nh_assets.cli.exit_codes import OK, PREFLIGHT_FAILED
from nh_assets.cli.output import print_json
from nh_assets.cli.project import load_project_settings, open_instance
from nh_assets.operations.preflight import FAIL, WARN, run_checks

TOKEN_ENV = "CLOUDFLARE_API_TOKEN"  # what the wrangler resource reads; preflight only asks whether it is set


def preflight_command(as_json: bool) -> int:
    settings = load_project_settings()
    env = dict(os.environ)
    instance = open_instance()
    try:
        verdicts = run_checks(settings, env=env, instance=instance, token_present=bool(env.get(TOKEN_ENV, "").strip()))
    finally:
        instance.dispose()
    failed = sum(v.level is FAIL for v in verdicts)
    warned = sum(v.level is WARN for v in verdicts)
    if as_json:
        print_json(
            {
                "ok": not failed,
                "fail": failed,
                "warn": warned,
                "verdicts": [{"level": v.level.value, "check": v.check, "detail": v.detail} for v in verdicts],
            }
        )
    else:
        for verdict in verdicts:
            print(verdict.line())
        print(f"preflight: {failed} FAIL, {warned} WARN, {len(verdicts) - failed - warned} OK")
    return PREFLIGHT_FAILED if failed else OK
