"""The "report ready" message (the old notify.sh): which days readers have not been told about.

When the site has been deployed (or built, when there is no Cloudflare token), the alert webhook
hears about the newest day whose content changed since the last message: its title, its morning
brief (the summary when the brief failed) and link, plus how many other days changed with it (a
backfill is one message, not a hundred).
``_notified.json`` beside the day copies remembers the hash of each day as last announced, so a
message is sent once per change however many builds happen between deployments.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from nh_assets.artifacts import write_atomic

from nh_assets.publishing.site.day_input import DayInput, day_files, read_day
from nh_assets.publishing.site.markdown_render import plain_text

STATE_FILE = "_notified.json"
SUMMARY_CHARS = 600


@dataclass(frozen=True)
class Pending:
    days: dict[str, str]  # date → sha of its copy, for every day not announced as it is now

    @property
    def newest(self) -> str | None:
        return max(self.days) if self.days else None


def pending_days(src_dir: Path) -> Pending:
    try:
        told = json.loads((src_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        told = {}
    now = {day: hashlib.sha256(path.read_bytes()).hexdigest()[:24] for day, path in day_files(src_dir).items()}
    return Pending({day: sha for day, sha in now.items() if told.get(day) != sha})


def mark_told(src_dir: Path, pending: Pending) -> None:
    try:
        told = json.loads((src_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        told = {}
    told.update(pending.days)
    write_atomic(src_dir / STATE_FILE, (json.dumps(told, sort_keys=True, indent=0) + "\n").encode())


def report_ready_text(day: DayInput, *, link: str, others: int, deployed: bool) -> str:
    where = "published" if deployed else "built locally (not deployed: no CLOUDFLARE_API_TOKEN)"
    # The morning brief is the message when the day has one: three sentences fit a phone's preview.
    text = " ".join(day.brief) if day.brief else plain_text(day.payload.summary, SUMMARY_CHARS)
    lines = [f"NeuroHelix report ready — {day.payload.title} ({where})", text]
    if day.all_missing():
        lines.append(f"Incomplete: missing {', '.join(day.all_missing())}")
    lines.append(link)
    if others:
        lines.append(f"(+{others} other day{'s' if others != 1 else ''} updated)")
    return "\n".join(lines)


def newest_message(src_dir: Path, pending: Pending, *, base_url: str, deployed: bool) -> str | None:
    if pending.newest is None:
        return None
    day = read_day(src_dir / f"{pending.newest}.json")
    link = f"{base_url.rstrip('/')}/reports/{day.date}/"
    return report_ready_text(day, link=link, others=len(pending.days) - 1, deployed=deployed)
