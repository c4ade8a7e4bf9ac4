"""NeuroHelix as a Dagster code location; ``defs`` is its root.

``defs`` is built lazily (PEP 562) so that tools inside the package, such as
``python -m nh_assets.registry validate``, never depend on the shipped registry or the
operator's environment being valid. Dagster finds it through ``dir()`` and ``getattr``.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "defs":
        from nh_assets.definitions import defs

        return defs
    raise AttributeError(f"module 'nh_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "defs"])
