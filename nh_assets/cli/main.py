"""``nh``'s entry point: arguments, ``.env``, and the promise of one line per error.

Every command ends here with an exit code from ``exit_codes``. Expected failures arrive as
``NhError`` (cause and fix in one line); anything else is a bug in ``nh`` or Dagster and is still
reported in one line, with the traceback only when ``NH_DEBUG=1``, because operators' scripts and
logs should never have to parse a stack trace.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from nh_assets.cli import environment as environment_module
from nh_assets.cli.exit_codes import INVALID, PREFLIGHT_FAILED, RUN_FAILED, UNAVAILABLE, USAGE, NhError

EPILOG = f"""exit codes: 0 ok · {INVALID} invalid configuration or registry · {RUN_FAILED} a run failed
(or the day is incomplete, for status) · {PREFLIGHT_FAILED} preflight failed · {UNAVAILABLE} Dagster unreachable
· {USAGE} bad arguments. Settings come from the environment and ./.env (which wins, as in dagster dev);
see `nh config`."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nh",
        description="NeuroHelix operator commands over the running Dagster instance.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        if json_flag:
            sub.add_argument("--json", action="store_true", help="one JSON document on stdout, for scripts")
        return sub

    validate = command("validate", f"check the prompt registry; exit {INVALID} when invalid", json_flag=False)
    validate.add_argument("path", nargs="?", help="registry TSV (default: $NH_REGISTRY, else registry/prompts.tsv)")

    command("preflight", f"is this machine ready? verdicts per check; exit {PREFLIGHT_FAILED} when one fails")

    plan = command("plan", "dry run: what would run for a day or range, its Gemini requests, tokens and least time")
    plan.add_argument("days", metavar="DATE|START..END", help="YYYY-MM-DD, today, yesterday, or a range")
    plan.add_argument("--select", help="Dagster asset selection, e.g. daily_aggregator, 'key:concept_synthesizer+'")

    run = command("run", f"submit one day to the instance's run queue; exit {RUN_FAILED} if it fails (--wait)")
    run.add_argument("day", metavar="DATE", help="YYYY-MM-DD, today or yesterday")
    run.add_argument("--select", help="Dagster asset selection (default: every prompt)")
    run.add_argument("--wait", action="store_true", help="follow the run until it ends")

    backfill = command("backfill", f"a multi-run backfill of a range through the daemon; exit {RUN_FAILED} on failure")
    backfill.add_argument("days", metavar="START..END", help="an inclusive range of days (one day is DATE..DATE)")
    backfill.add_argument("--select", help="Dagster asset selection (default: every prompt)")
    backfill.add_argument("--wait", action="store_true", help="follow the backfill until it ends")

    status = command("status", f"per asset of a day: state, path, sha256, tokens; exit {RUN_FAILED} if incomplete")
    status.add_argument("day", metavar="DATE", nargs="?", default="today", help="YYYY-MM-DD (default: today)")

    command("config", f"every setting, its value and where it came from (secrets masked); exit {INVALID} if invalid")
    return parser


def _dispatch(args: argparse.Namespace, environment: environment_module.Environment) -> int:
    # Imported per command: `nh validate` and `nh config` should not pay for loading Dagster.
    if args.command == "validate":
        from nh_assets.registry.__main__ import main as registry_main

        return registry_main(["validate", *([args.path] if args.path else [])])
    if args.command == "config":
        from nh_assets.cli.config import config_command

        return config_command(environment, args.json)
    if args.command == "preflight":
        from nh_assets.cli.preflight import preflight_command

        return preflight_command(args.json)

    from nh_assets.cli.project import load_project, open_instance, parse_day, parse_days, resolve_selection

    project = load_project()
    if args.command in ("plan", "status"):
        instance = open_instance()
        try:
            if args.command == "plan":
                from nh_assets.cli.asset_state import MaterializationReader
                from nh_assets.cli.plan import build_plan, print_plan

                days = parse_days(args.days, project)
                assets = resolve_selection(project, args.select)
                plan = build_plan(project, MaterializationReader(instance), assets, days)
                print_plan(plan, args.json)
                return 0
            from nh_assets.cli.status import print_status, status_document

            document = status_document(project, instance, parse_day(args.day, project))
            print_status(document, args.json)
            return 0 if document["complete"] else RUN_FAILED
        finally:
            instance.dispose()

    from nh_assets.cli.launch import backfill_command, run_command
    from nh_assets.cli.webserver import Webserver

    server = Webserver(environment_module.webserver_url(os.environ))
    if args.command == "run":
        day = parse_day(args.day, project).isoformat()
        assets = resolve_selection(project, args.select) if args.select else None
        return run_command(server, project.job_name, day, assets, wait=args.wait, as_json=args.json)
    if ".." not in args.days:
        raise NhError(f"{args.days!r}: backfill takes a range START..END (for one day, DAY..DAY or `nh run`)", USAGE)
    days = parse_days(args.days, project)
    assets = resolve_selection(project, args.select)
    return backfill_command(
        server, days[0].isoformat(), days[-1].isoformat(), assets, wait=args.wait, as_json=args.json
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    environment = environment_module.load_environment(Path.cwd(), os.environ)
    environment_module.apply(environment)
    try:
        return _dispatch(args, environment)
    except NhError as exc:
        print(f"nh: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("nh: interrupted; anything already submitted keeps running in Dagster", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one-line promise holds for bugs too
        if os.environ.get("NH_DEBUG") == "1":
            traceback.print_exc()
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(
            f"nh: unexpected {type(exc).__name__}: {reason} — rerun with NH_DEBUG=1 for the traceback and report it",
            file=sys.stderr,
        )
        return UNAVAILABLE


if __name__ == "__main__":
    raise SystemExit(main())
