"""Trend arithmetic and topic normalisation, as pure functions (no site built)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from nh_assets.publishing.site.topics import TopicAliasError, load_topics, spelling_key
from nh_assets.publishing.site.trends import (
    WINDOWS,
    Mention,
    Window,
    buckets,
    histories,
    movers,
    new_topics,
    week_days,
    window_chart,
)

pytestmark = pytest.mark.fast

END = date(2026, 11, 20)  # a Friday


def day(offset: int) -> str:
    return (END - timedelta(days=offset)).isoformat()


def mention(offset: int, *topics: str, categories: tuple[str, ...] = ()) -> Mention:
    return Mention(day(offset), frozenset(topics), frozenset(categories))


@pytest.mark.parametrize(
    ("tag", "key"),
    [
        ("GPUs", "gpu"),
        ("gpu", "gpu"),
        ("GPU", "gpu"),
        ("gpus", "gpu"),
        ("LLMs", "llm"),
        ("Large Language Models", "llm"),
        ("open-source", "open source"),
        ("Open Source", "open source"),
        ("AI agents", "ai agent"),
        ("AI-Agents!", "ai agent"),
        ("policies", "policy"),
        ("news", "news"),
        ("status", "status"),
        ("robotics", "robotics"),
        ("  Chips  ", "chip"),
    ],
)
def test_a_tag_becomes_its_topic(tag, key):
    assert load_topics().key(tag) == key


def test_only_the_last_word_is_made_singular():
    assert spelling_key("chips acts") == "chips act"


def _aliases(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "topic_aliases.tsv"
    path.write_text("# comment\nalias\ttopic\n" + body)
    return path


def test_an_alias_table_merges_synonyms(tmp_path):
    topics = load_topics(_aliases(tmp_path, "Graphics Processing Units\tGPU\n"))
    assert topics.key("graphics processing unit") == topics.key("GPUs") == "gpu"


@pytest.mark.parametrize(
    ("body", "line", "fix"),
    [
        ("gpu\n", 3, "1 cell — write exactly alias<TAB>topic"),
        ("GPUs\tgpu\n", 3, "delete the row"),
        ("genai\tgenerative ai\nGenAI\tai\n", 4, "keep one"),
        ("large language model\tlanguage model\nlanguage model\tllm\n", 3, "point 'large language model' at 'llm'"),
        ("\tgpu\n", 3, "both the alias and the topic need a word"),
    ],
)
def test_a_bad_alias_row_is_refused_with_its_line_and_fix(tmp_path, body, line, fix):
    path = _aliases(tmp_path, body)
    with pytest.raises(TopicAliasError) as error:
        load_topics(path)
    assert f"{path}:{line}: " in str(error.value) and fix in str(error.value)


def test_a_missing_alias_table_says_where_it_comes_from(tmp_path):
    with pytest.raises(TopicAliasError, match="restore registry/topic_aliases.tsv"):
        load_topics(tmp_path / "nope.tsv")


def test_the_shipped_alias_table_is_valid():
    assert load_topics().aliases  # the repository's registry/topic_aliases.tsv loads


def test_rising_and_fading_compare_a_period_with_the_one_before():
    marks = [
        *(mention(o, "gpu") for o in (0, 1, 2, 3, 4)),  # 5 days in the last 7
        mention(9, "gpu"),  # 1 day in the 7 before
        *(mention(o, "robotics") for o in (8, 9, 10)),  # 3 days before, none now
        mention(2, "robotics"),
        mention(3, "rag"),
        mention(10, "rag"),  # level: neither rising nor fading
        mention(7, "steady"),  # day 7 back is the previous period's newest day
    ]
    rising, fading = movers(marks, END, 7)
    assert [(m.topic, m.current, m.previous, m.change) for m in rising] == [("gpu", 5, 1, 4)]
    assert [(m.topic, m.current, m.previous, m.change) for m in fading] == [
        ("robotics", 1, 3, -2),
        ("steady", 0, 1, -1),
    ]


def test_ties_rank_by_the_current_count_then_by_name():
    marks = [mention(0, "b", "a"), mention(1, "a", "c"), mention(8, "a")]
    rising, _ = movers(marks, END, 7)
    assert [m.topic for m in rising] == ["a", "b", "c"]  # a: 2-1=+1 with 2 now; b, c: +1 with 1 now


def test_new_topics_are_those_first_named_this_week():
    marks = [mention(0, "quantum annealing", "gpu"), mention(2, "quantum annealing"), mention(30, "gpu"),
             mention(6, "edge ai"), mention(7, "old news")]
    fresh = new_topics(histories(marks), END)
    assert [(h.topic, h.first_seen, h.days) for h in fresh] == [
        ("quantum annealing", day(2), 2),
        ("edge ai", day(6), 1),
    ]


def test_a_history_has_every_week_from_first_to_last_seen():
    marks = [mention(0, "gpu"), mention(1, "gpu"), mention(15, "gpu")]
    h = histories(marks)["gpu"]
    assert (h.first_seen, h.last_seen, h.days) == (day(15), day(0), 3)
    assert h.weeks == [("2026-W45", 1), ("2026-W46", 0), ("2026-W47", 2)]


def test_day_buckets_end_on_the_newest_day_and_week_buckets_clip_to_the_window():
    days = buckets(END, Window(7, "day"))
    assert [b[0] for b in days] == [day(o) for o in range(6, -1, -1)]
    weeks = buckets(END, Window(30, "week"))
    assert weeks[0][1] == END - timedelta(days=29) and weeks[-1] == ("2026-W47", date(2026, 11, 16), END)
    assert [d.isoformat() for d in week_days("2026-W47")][::6] == ["2026-11-16", "2026-11-22"]


def test_a_chart_counts_days_per_bucket_and_keeps_the_most_named_topics():
    marks = [mention(o, *(f"t{i}" for i in range(7 - o)), categories=("Models",)) for o in range(7)]
    marks.append(mention(40, "t6", categories=("Hardware",)))  # outside the window
    chart = window_chart(marks, END, WINDOWS[0], "topics", "Top topics")
    assert list(chart.series) == ["t0", "t1", "t2", "t3", "t4"]
    assert chart.series["t0"] == [1] * 7 and chart.series["t4"] == [0, 0, 0, 0, 1, 1, 1]
    cats = window_chart(marks, END, WINDOWS[0], "categories", "Categories")
    assert list(cats.series) == ["Models"] and cats.rows()[0] == [day(6), 1]
