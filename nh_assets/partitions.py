"""The one daily partitions definition every prompt asset shares.

A partition is a NeuroHelix day in the operator's time zone. ``end_offset=1`` makes today's
partition exist from midnight on, because the pipeline runs each morning about today's news.
"""

from __future__ import annotations

from datetime import date

import dagster as dg


def daily_partitions(start: date, timezone: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), timezone=timezone, end_offset=1
    )
