"""What changed across days: counts per day or week, rising and fading topics, new topics.

Pure functions over ``Mention`` records (a day, its topics already normalised, its categories),
so the trends page, the tag pages and the week page all count the same way and the tests can
check every number without building a site. A count is a number of days: a topic named twice on
one day counts once. "Now" is the newest day published, never the clock, so the same days
always give the same page.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Sequence

TOP_SERIES = 5  # topics drawn per chart
TOP_MOVERS = 10


@dataclass(frozen=True)
class Mention:
    date: str
    topics: frozenset[str]
    categories: frozenset[str]


@dataclass(frozen=True)
class Window:
    days: int
    unit: str  # "day" or "week": one bucket per day, or per ISO week


WINDOWS = (Window(7, "day"), Window(30, "week"), Window(365, "week"))


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_days(week: str) -> list[date]:
    """The seven dates (Monday first) of ``YYYY-Www``."""
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    return [monday + timedelta(days=i) for i in range(7)]


def buckets(end: date, window: Window) -> list[tuple[str, date, date]]:
    """(label, first day, last day) per bucket of the window ending on ``end``, oldest first."""
    start = end - timedelta(days=window.days - 1)
    if window.unit == "day":
        days = [start + timedelta(days=i) for i in range(window.days)]
        return [(d.isoformat(), d, d) for d in days]
    out: list[tuple[str, date, date]] = []
    monday = start - timedelta(days=start.weekday())
    while monday <= end:
        out.append((iso_week(monday), max(monday, start), min(monday + timedelta(days=6), end)))
        monday += timedelta(days=7)
    return out


def counts_between(mentions: Iterable[Mention], first: date, last: date, attr: str) -> Counter[str]:
    """Days between ``first`` and ``last`` (inclusive) that name each topic or category."""
    low, high = first.isoformat(), last.isoformat()
    counts: Counter[str] = Counter()
    for m in mentions:
        if low <= m.date <= high:
            counts.update(getattr(m, attr))
    return counts


@dataclass(frozen=True)
class Chart:
    """One chart and the table beside it: a row per bucket, a column per series."""

    title: str
    unit: str
    labels: list[str]
    series: dict[str, list[int]]  # name → count per bucket, in ``labels`` order

    def rows(self) -> list[list[object]]:
        return [[label, *(values[i] for values in self.series.values())] for i, label in enumerate(self.labels)]


def window_chart(mentions: Sequence[Mention], end: date, window: Window, attr: str, title: str) -> Chart:
    """The ``attr`` counts per bucket; for topics only the window's ``TOP_SERIES`` most named."""
    spans = buckets(end, window)
    totals = counts_between(mentions, spans[0][1], end, attr)
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    names = [n for n, _ in (ranked if attr == "categories" else ranked[:TOP_SERIES])]
    per_bucket = [counts_between(mentions, first, last, attr) for _label, first, last in spans]
    series = {name: [c[name] for c in per_bucket] for name in names}
    return Chart(title=title, unit=window.unit, labels=[label for label, _f, _l in spans], series=series)


@dataclass(frozen=True)
class Mover:
    topic: str
    current: int
    previous: int

    @property
    def change(self) -> int:
        return self.current - self.previous


def movers(mentions: Sequence[Mention], end: date, days: int) -> tuple[list[Mover], list[Mover]]:
    """(rising, fading): the last ``days`` days against the ``days`` before them, biggest change first."""
    current = counts_between(mentions, end - timedelta(days=days - 1), end, "topics")
    previous = counts_between(mentions, end - timedelta(days=2 * days - 1), end - timedelta(days=days), "topics")
    all_moves = [Mover(t, current[t], previous[t]) for t in set(current) | set(previous)]
    rising = sorted((m for m in all_moves if m.change > 0), key=lambda m: (-m.change, -m.current, m.topic))
    fading = sorted((m for m in all_moves if m.change < 0), key=lambda m: (m.change, -m.previous, m.topic))
    return rising[:TOP_MOVERS], fading[:TOP_MOVERS]


@dataclass(frozen=True)
class History:
    """A topic's whole life on the site: first and last day named, and days named per ISO week."""

    topic: str
    first_seen: str
    last_seen: str
    days: int
    weeks: list[tuple[str, int]]  # every week from the first to the last, zeros included


def histories(mentions: Sequence[Mention]) -> dict[str, History]:
    """Per topic; a topic's history changes only on a day that names it (tag pages stay put otherwise)."""
    seen: dict[str, list[str]] = {}
    for m in sorted(mentions, key=lambda m: m.date):
        for topic in m.topics:
            seen.setdefault(topic, []).append(m.date)
    out = {}
    for topic, dates in seen.items():
        per_week = Counter(iso_week(date.fromisoformat(d)) for d in dates)
        first, last = date.fromisoformat(dates[0]), date.fromisoformat(dates[-1])
        monday = first - timedelta(days=first.weekday())
        weeks = []
        while monday <= last:
            label = iso_week(monday)
            weeks.append((label, per_week[label]))
            monday += timedelta(days=7)
        out[topic] = History(topic, dates[0], dates[-1], len(dates), weeks)
    return out


def new_topics(history: dict[str, History], end: date, days: int = 7) -> list[History]:
    """Topics first named in the last ``days`` days, most named first."""
    since = (end - timedelta(days=days - 1)).isoformat()
    fresh = [h for h in history.values() if h.first_seen >= since]
    return sorted(fresh, key=lambda h: (-h.days, h.first_seen, h.topic))
