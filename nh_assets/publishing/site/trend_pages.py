"""The trends page's and the tag pages' numbers, as plain data a page hash can cover.

``pages`` turns these into pages; what each returns is exactly what its page depends on, so
the build re-renders the trends page when the window's counts move (every new day), a tag page
only when its topic's own history does, and nothing else.
"""

from __future__ import annotations

from datetime import date
from typing import Iterable, Protocol, Sequence

from .topics import Topics
from .trends import WINDOWS, Chart, History, Mention, histories, iso_week, movers, new_topics, week_days, window_chart


class Summary(Protocol):
    date: str
    tags: Sequence[str]
    categories: Sequence[str]


def mentions(days: Iterable[Summary], topics: Topics) -> list[Mention]:
    return [Mention(d.date, frozenset(topics.key(t) for t in d.tags), frozenset(d.categories)) for d in days]


def _chart(chart_id: str, chart: Chart, kind: str) -> dict:
    return {
        "id": chart_id,
        "title": chart.title,
        "unit": chart.unit,
        "kind": kind,  # "categories" or "tags": where each series links
        "labels": chart.labels,
        "series": [{"name": name, "values": values} for name, values in chart.series.items()],
        "rows": chart.rows(),
    }


def _mover(m) -> dict:
    return {"topic": m.topic, "current": m.current, "previous": m.previous, "change": m.change}


def trends_context(marks: Sequence[Mention], history: dict[str, History]) -> dict:
    """Everything the trends page shows, for the windows ending on the newest day."""
    if not marks:
        return {"end": None, "windows": [], "new": []}
    end = date.fromisoformat(max(m.date for m in marks))
    windows = []
    for w in WINDOWS:
        per = "day" if w.unit == "day" else "week"
        rising, fading = movers(marks, end, w.days)
        windows.append(
            {
                "days": w.days,
                "unit": w.unit,
                "charts": [
                    _chart(f"c{w.days}", window_chart(marks, end, w, "categories", f"Categories per {per}, last {w.days} days"), "categories"),
                    _chart(f"t{w.days}", window_chart(marks, end, w, "topics", f"Top topics per {per}, last {w.days} days"), "tags"),
                ],
                "rising": [_mover(m) for m in rising],
                "fading": [_mover(m) for m in fading],
            }
        )
    fresh = [{"topic": h.topic, "first_seen": h.first_seen, "days": h.days} for h in new_topics(history, end)]
    return {"end": end.isoformat(), "windows": windows, "new": fresh}


def history_context(h: History) -> dict:
    """A tag page's history box: sparkline values, first and last seen."""
    return {
        "topic": h.topic,
        "first_seen": h.first_seen,
        "last_seen": h.last_seen,
        "days": h.days,
        "weeks": [list(w) for w in h.weeks],
    }


__all__ = ["history_context", "histories", "mentions", "trends_context", "week_context", "weeks_of"]


class WeekDay(Summary, Protocol):
    title: str
    brief: Sequence[str]


def weeks_of(days: Iterable[WeekDay]) -> dict[str, list[WeekDay]]:
    """ISO week → its days, oldest first."""
    out: dict[str, list[WeekDay]] = {}
    for d in sorted(days, key=lambda d: d.date):
        out.setdefault(iso_week(date.fromisoformat(d.date)), []).append(d)
    return out


def week_context(week: str, days: Sequence[WeekDay], marks: Sequence[Mention]) -> dict:
    """A week page: its days with their briefs, and its topics against the week before.

    Counted over the ISO week (Monday to Sunday), so the page of a finished week never changes
    again, and a new day re-renders its own week only.
    """
    sunday = week_days(week)[-1]
    rising, _fading = movers(marks, sunday, 7)
    return {
        "week": week,
        "first": week_days(week)[0].isoformat(),
        "last": sunday.isoformat(),
        "days": [{"date": d.date, "title": d.title, "brief": list(d.brief)} for d in days],
        "rising": [_mover(m) for m in rising],
    }
