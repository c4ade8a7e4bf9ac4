"""Shape of the daily report and of its tags, shared by the prompts and the code.

The daily_aggregator prompt asks the model for exactly these sections and the
tag_extractor prompt restricts categories to exactly this list; the renderer,
exporter and checks downstream rely on the same names. Keeping them in one
tiny module means a rename happens in one place (plus the two prompt texts in
registry/prompts.tsv, which spell them out for the model).
"""

from __future__ import annotations

REPORT_SECTIONS: tuple[str, ...] = (
    "Executive Summary",
    "Key Themes & Insights",
    "Model & Technology Advances",
    "Market Dynamics",
    "Regulatory Developments",
    "Developer Tools",
    "Hardware Landscape",
    "Notable Developments",
    "Strategic Implications",
    "Actionable Recommendations",
)

TAG_CATEGORIES: tuple[str, ...] = (
    "Models",
    "Research",
    "Regulation",
    "Open Source",
    "Hardware",
    "Safety & Ethics",
    "Business",
    "Developer Tools",
    "Startups",
    "Applications",
)
