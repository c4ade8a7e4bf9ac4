"""Interval arithmetic the concurrency tests judge by: how many intervals are open at once."""

from __future__ import annotations


def max_open(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one instant (an end frees before a start takes)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak
