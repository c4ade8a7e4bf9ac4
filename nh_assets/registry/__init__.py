"""The prompt registry: ``registry/prompts.tsv``, one row per asset of the daily pipeline.

Each row becomes one Dagster asset: its prompt text, model, tools, limits, where it writes its
output, which other prompts it reads, which ``##`` sections it must have and whether its checks
block publishing. Keeping this in a flat TSV lets an operator add or tune a prompt with a text
editor and review the change as a one-line diff, without touching Python. ``spec`` holds the row
model, ``dependencies`` the ``depends_on`` syntax, ``load`` the file format and every refusal as
``PATH:LINE:COLUMN: message — fix``, ``graph`` the cycle search, ``__main__`` the validate command.
"""

from nh_assets.registry.dependencies import Dependency, parse_dependencies
from nh_assets.registry.load import COLUMNS, OPTIONAL_HEADER_COLUMNS, REGISTRY_ENV_VAR, load_registry
from nh_assets.registry.spec import (
    BUILTIN_MODEL,
    CONCURRENCY_LIMITS,
    WAVES,
    PromptSpec,
    Registry,
    RegistryError,
)

__all__ = [
    "BUILTIN_MODEL",
    "COLUMNS",
    "CONCURRENCY_LIMITS",
    "OPTIONAL_HEADER_COLUMNS",
    "REGISTRY_ENV_VAR",
    "WAVES",
    "Dependency",
    "PromptSpec",
    "Registry",
    "RegistryError",
    "load_registry",
    "parse_dependencies",
]
