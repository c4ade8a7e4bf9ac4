"""Synthetic days where one topic is made to rise and one appears for the first time.

The rising topic is spelled three ways (``GPUs``, ``gpu``, ``GPU``), so counting it right also
proves the normalisation: one day in the week before the last, six days in the last week.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from nh_assets.publishing.site.day_input import write_day
from nh_assets_tests.support.site_days import days_back, synthetic_day

DAYS = days_back(date(2026, 11, 20), 21)
RISING_SPELLINGS = ("gpu", "GPU", "GPUs")
RISING_BEFORE = [DAYS[-11]]  # one day in the 7 days before the last 7
RISING_NOW = DAYS[-6:]  # six of the last 7 days
NEW_TOPIC, NEW_DAYS = "quantum annealing", DAYS[-2:]


def planted(day: str) -> tuple[str, ...]:
    tags: list[str] = []
    if day in RISING_BEFORE:
        tags.append("GPUs")
    if day in RISING_NOW:
        tags.append(RISING_SPELLINGS[RISING_NOW.index(day) % 3])
    if day in NEW_DAYS:
        tags.append(NEW_TOPIC)
    return tuple(tags)


def write_trend_days(src_dir: Path, days: list[str] = DAYS) -> None:
    for day in days:
        write_day(src_dir, synthetic_day(day, tags=planted(day)))
