"""Each model's request limits per minute and per day: ``registry/quotas.tsv``, beside the prompts.

Google states its quotas per model (``GenerateRequestsPerDayPerProjectPerModel``) and per tier,
and they differ by two orders of magnitude between models and tiers. They belong with the
registry rather than in Settings because they are a table keyed by the model names the registry
rows use, reviewed and edited the same way, and checked against those rows: ``nh preflight``
warns when the rows of one model need more requests a day than its quota allows. The shared
bucket counts each model's requests at the gate against the row declared here, on every machine;
a model with no row is limited only by the global ``NH_RATE_PER_MINUTE`` / ``NH_RATE_PER_DAY``.

File format: UTF-8, tab-separated, ``#`` comments and blank lines ignored, a header naming
``model``, ``per_minute`` and ``per_day`` (extra columns, such as ``tier``, are kept for the
reader and ignored). Problems are reported all at once as ``PATH:LINE:COLUMN: message — fix``.
A registry without the file has no per-model limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nh_assets.registry.spec import RegistryError

QUOTAS_FILE = "quotas.tsv"
_COLUMNS = ("model", "per_minute", "per_day")
_MODEL_RE = re.compile(r"gemini-[a-z0-9][a-z0-9.\-]*")


@dataclass(frozen=True)
class ModelQuota:
    model: str
    per_minute: int
    per_day: int
    line: int = 0


def quotas_path(registry_path: str | Path) -> Path:
    """The quotas file of a registry: beside its prompts file."""
    return Path(registry_path).with_name(QUOTAS_FILE)


def load_quotas(path: str | Path) -> dict[str, ModelQuota]:
    """The declared quota of each model, or {} when the file does not exist."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(path, [f"{path}: cannot read ({type(exc).__name__}) — check the file's permissions and encoding"]) from None
    problems: list[str] = []
    quotas: dict[str, ModelQuota] = {}
    header: list[str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in raw.split("\t")]
        if header is None:
            header = cells
            missing = [c for c in _COLUMNS if c not in header]
            if missing:
                problems.append(f"{path}:{number}:header: missing column(s) {', '.join(missing)} — the header names model, per_minute, per_day")
                break
            continue
        row = dict(zip(header, cells))
        model = row.get("model", "")
        if not _MODEL_RE.fullmatch(model):
            problems.append(f"{path}:{number}:model: {model!r} is not a Gemini model name — write e.g. gemini-2.5-flash")
            continue
        if model in quotas:
            problems.append(f"{path}:{number}:model: {model} is declared again (first on line {quotas[model].line}) — keep one row per model")
            continue
        limits = {}
        for column in ("per_minute", "per_day"):
            value = row.get(column, "")
            if not value.isdigit() or int(value) < 1:
                problems.append(f"{path}:{number}:{column}: {value!r} is not a whole number of requests ≥ 1 — write the limit your tier states")
            else:
                limits[column] = int(value)
        if len(limits) == 2 and limits["per_day"] <= limits["per_minute"]:
            problems.append(
                f"{path}:{number}:per_day: {limits['per_day']} a day is not more than {limits['per_minute']} a minute — "
                "check the two columns are not swapped"
            )
            continue
        if len(limits) == 2:
            quotas[model] = ModelQuota(model, limits["per_minute"], limits["per_day"], number)
    if header is None and not problems:
        problems.append(f"{path}:1:header: no header line — the first non-comment line names model, per_minute, per_day")
    if problems:
        raise RegistryError(path, problems)
    return quotas
