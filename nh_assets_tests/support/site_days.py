"""Synthetic site days for the site's tests and benchmark: realistic sizes, deterministic words.

Each day gets a report with the real section headings, ten research notes with sources, the two
analyses, a dashboard and a three-sentence morning brief, at roughly the sizes the pipeline produces (a report of ~6 KB, notes of
~2 KB each). Words come from a fixed vocabulary shuffled by the day, so full-text search has
something to find, and a test can plant a word in exactly one day.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from nh_assets.publishing.site.day_input import DayInput, Kpis, Note, PublishedPayload
from nh_assets.publishing.site.markdown_render import extract_sources
from nh_assets.formats.vocabulary import REPORT_SECTIONS, TAG_CATEGORIES
from nh_assets.formats.site_payload import PayloadSection

VOCABULARY = (
    "model agent benchmark inference training dataset alignment safety regulation chip accelerator "
    "startup funding open-source weights latency context retrieval evaluation compute cluster policy "
    "multimodal reasoning distillation quantization robotics compliance audit transparency market "
    "partnership acquisition developer tooling assistant copilot kernel compiler memory bandwidth "
    "energy datacenter sovereignty licensing benchmark-gaming hallucination grounding provenance"
).split()
TAGS = [f"topic-{i}" for i in range(60)]
NOTES = [
    ("ai_ecosystem_watch", "AI Ecosystem Watch", "Research"),
    ("tech_regulation_pulse", "Tech Regulation Pulse", "Research"),
    ("emergent_open_source", "Emergent Open Source", "Research"),
    ("hardware_compute", "Hardware & Compute", "Research"),
    ("ethics_alignment", "Ethics & Alignment", "Research"),
    ("model_comparison", "Model Comparison", "Market"),
    ("corporate_strategy", "Corporate Strategy", "Market"),
    ("startup_radar", "Startup Radar", "Market"),
    ("developer_tools", "Developer Tools", "Market"),
    ("prompt_engineering", "Prompt Engineering", "Market"),
]


def _prose(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = rng.choices(VOCABULARY, k=rng.randint(10, 18))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def days_back(last: date, count: int) -> list[str]:
    return [(last - timedelta(days=count - 1 - i)).isoformat() for i in range(count)]


def synthetic_day(
    day: str,
    *,
    extra: str = "",
    answer: str | None = None,
    missing: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
) -> DayInput:
    """One day's input; ``extra`` lands in the summary, ``answer`` replaces the report's first section body,
    ``tags`` are planted after the day's six drawn ones."""
    rng = random.Random(day)
    title = f"NeuroHelix Daily Report — {day}"
    summary = (_prose(rng, 3) + (" " + extra if extra else "")).strip()
    sections = []
    for heading in REPORT_SECTIONS:
        body = answer if (answer is not None and not sections) else "\n\n".join(_prose(rng, 4) for _ in range(2))
        if heading in ("Notable Developments", "Strategic Implications", "Actionable Recommendations"):
            body = "\n".join(f"- {_prose(rng, 1)}" for _ in range(4))
        sections.append(PayloadSection(heading=heading, markdown=body))
    raw = f"# {title}\n\n" + "\n\n".join(f"## {s.heading}\n\n{s.markdown}" for s in sections)
    payload = PublishedPayload(
        date=day,
        title=title,
        summary=summary,
        tags=rng.sample(TAGS, 6) + list(tags),
        categories=rng.sample(list(TAG_CATEGORIES), 3),
        sections=sections,
        notable_developments=[],
        strategic_implications=[],
        recommendations=[],
        raw_markdown=raw,
        permalink=f"/reports/{day}/",
        missing_inputs=list(missing),
    )
    notes = []
    for pid, note_title, category in NOTES:
        text = (
            f"## Summary\n\n{_prose(rng, 5)}\n\n## Key Points\n\n- {_prose(rng, 1)}\n- {_prose(rng, 1)}\n\n"
            f"## Sources\n\n- [{pid} source one](https://example.org/{day}/{pid}/1)\n"
            f"- [{pid} source two](https://example.com/{day}/{pid}/2)\n"
        )
        notes.append(
            Note(prompt_id=pid, title=note_title, category=category, markdown=text, sources=extract_sources(text))
        )
    analyses = [
        Note(prompt_id=pid, title=t, category="Ideation", markdown=f"## Themes\n\n{_prose(rng, 6)}")
        for pid, t in (("continuity_builder", "Continuity Builder"), ("meta_project_explorer", "Meta Project Explorer"))
    ]
    brief = [f"Theme of {day}: {_prose(rng, 1)}", f"Signal: {_prose(rng, 1)}", f"Shift: {_prose(rng, 1)}"]
    return DayInput(
        date=day,
        brief=brief,
        payload=payload,
        notes=notes,
        analyses=analyses,
        dashboard_html=f'<section class="grid"><h2>Dashboard</h2><p>{_prose(rng, 3)}</p></section>',
        kpis=Kpis(
            domains=10,
            tokens=rng.randint(150_000, 400_000),
            prompts_run=22,
            prompts_failed=0,
            prompts_total=22,
            generation_s=round(rng.uniform(300, 900), 1),
        ),
    )
