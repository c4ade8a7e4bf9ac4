"""``python -m nh_assets.registry validate [PATH]``: check a registry and print its prompts.

Exit code 10 on an invalid registry, as the old ``nh registry validate`` did, so scripts and
``scripts/dev.sh`` can stop before Dagster loads a broken graph.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nh_assets.registry.load import REGISTRY_ENV_VAR, load_registry
from nh_assets.registry.quotas import load_quotas, quotas_path
from nh_assets.registry.spec import PromptSpec, Registry, RegistryError
from nh_assets.settings import DEFAULT_REGISTRY_PATH, registry_path_from_env

EXIT_INVALID = 10


def _format_table(registry: Registry) -> str:
    def deps_cell(spec: PromptSpec, width: int = 48) -> str:
        text = ", ".join(str(dep) for dep in spec.depends_on) or "-"
        if len(text) <= width:
            return text
        shown: list[str] = []
        for dep in spec.depends_on:
            more = f" +{len(spec.depends_on) - len(shown)} more"
            if len(", ".join([*shown, str(dep)])) + len(more) > width:
                break
            shown.append(str(dep))
        return f"{', '.join(shown)} +{len(spec.depends_on) - len(shown)} more"

    header = ("id", "wave", "class", "model", "depends_on", "output")
    rows = [
        (s.prompt_id, s.wave, s.concurrency_class, s.model, deps_cell(s), s.expected_outputs)
        for s in registry.prompts
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nh_assets.registry",
        description="Inspect the NeuroHelix prompt registry (a TSV of prompts).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate",
        help="check a registry file and print its prompts",
        description=(
            "Validate a registry TSV. Prints a table and 'OK: N prompts' when valid; "
            f"otherwise prints every problem to stderr and exits {EXIT_INVALID}."
        ),
    )
    validate.add_argument(
        "path",
        nargs="?",
        help=f"registry TSV (default: ${REGISTRY_ENV_VAR}, else {DEFAULT_REGISTRY_PATH})",
    )
    args = parser.parse_args(argv)

    try:
        registry = load_registry(args.path or registry_path_from_env())
        quotas = load_quotas(quotas_path(registry.path))
    except RegistryError as err:
        print(err, file=sys.stderr)
        return EXIT_INVALID
    print(_format_table(registry))
    if quotas:
        print(f"quotas: {', '.join(f'{q.model} {q.per_minute}/min {q.per_day}/day' for q in quotas.values())}")
    print(f"OK: {len(registry.prompts)} prompts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
