"""The benchmark's arithmetic: sliding-window counts and the schedule's lower bound."""

from __future__ import annotations

import pytest

from benchmarks.day import max_in_window
from benchmarks.lower_bound import lower_bound_s

pytestmark = pytest.mark.fast


def test_max_in_window_counts_a_half_open_sliding_window():
    assert max_in_window([]) == 0
    assert max_in_window([0, 30, 59.9]) == 3
    assert max_in_window([0, 30, 60.0]) == 2  # 60 s apart: not in the same 60 s window
    assert max_in_window([0, 1, 2, 61, 61.5, 62, 62.5]) == 4


def test_lower_bound_of_the_shipped_graph(registry):
    bounds = lower_bound_s(registry, latency=5.0, max_processes=4, rate_per_minute=50)
    # research → concept → novelty → aggregator → tag → dashboard (payload is builtin: 0 s)
    assert bounds["critical_path"] == 30.0
    # Six sequential prompts run one at a time, and the first can start only after the ten research
    # prompts: six `low` ones two at a time (and ten under a cap of four processes) take 15 s.
    assert bounds["pool gemini_sequential"] == 15.0 + 6 * 5.0
    assert bounds["bound"] == 45.0
    # Without the pools' throughput before a step, the bound was one research call + six: 35 s.
    assert bounds["pool gemini_low"] == 30.0
    assert bounds["rate limit"] == 0.0
    tight = lower_bound_s(registry, latency=5.0, max_processes=1, rate_per_minute=50)
    assert tight["process cap"] == 22 * 5.0  # the 22 model rows, the morning brief included
    limited = lower_bound_s(registry, latency=5.0, max_processes=4, rate_per_minute=7)
    assert limited["rate limit"] == (22 - 7) / 7 * 60.0
