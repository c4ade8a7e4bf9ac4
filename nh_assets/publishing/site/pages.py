"""Every page of the site as (path, content hash, renderer), from Jinja2 templates.

The build compares each page's hash with the one it wrote last time and renders only what
changed, so a page's hash covers everything its HTML depends on: the day's input for a day
page (plus its neighbours' dates), the list of day summaries for a listing page, and for all
pages ``SITE_VERSION`` (templates, stylesheet, scripts and the renderer's code), so editing a
template re-renders everything. Day pages depend on nothing global (no "N days" counter), which
is what keeps a new day from touching a thousand old pages.

Every page carries the same Content-Security-Policy: scripts only from the site itself and no
inline script at all; ``'wasm-unsafe-eval'`` because Pagefind's search runs as WebAssembly
(compiling it is all that keyword allows, not ``eval``). Nothing is loaded from another host.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import jinja2

from nh_assets.formats import html_sanitizer

from .day_input import DayInput, Note
from .html_policy import sanitize_html
from .svg_charts import line_chart, sparkline, swatch
from .topics import DEFAULT_ALIASES_PATH, current_topics
from .trend_pages import history_context, histories, mentions, trends_context, week_context, weeks_of
from .trends import iso_week
from nh_assets.publishing.site.markdown_render import plain_text, render_markdown, without_sources_section

PACKAGE_DIR = Path(__file__).resolve().parent
TEMPLATES = PACKAGE_DIR / "templates"
STATIC = PACKAGE_DIR / "static"
PER_PAGE = 24
FEED_ENTRIES = 30
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'"
)


def _site_version() -> str:
    digest = hashlib.sha256()
    names = ("pages.py", "markdown_render.py", "html_policy.py", "day_input.py")
    code = [PACKAGE_DIR / name for name in (*names, "topics.py", "trends.py", "trend_pages.py", "svg_charts.py")]
    if DEFAULT_ALIASES_PATH.is_file():  # the alias table decides which tags are one topic
        code.append(DEFAULT_ALIASES_PATH)
    # The site's HTML policy is the pipeline's (formats/html_sanitizer.py) with the site's rules on top.
    code.append(Path(html_sanitizer.__file__).resolve())
    for path in sorted([*TEMPLATES.iterdir(), *STATIC.iterdir(), *code]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


SITE_VERSION = _site_version()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "x"


def topic_slug(tag: str) -> str:
    """The tag page of the topic ``tag`` counts as (``GPUs`` → ``/tags/gpu/``)."""
    return slug(current_topics().key(tag))


def _longdate(day: str) -> str:
    return date.fromisoformat(day).strftime("%A %-d %B %Y")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "xml", "j2"], default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        isoweek=lambda day: iso_week(date.fromisoformat(day)),
        slug=slug,
        topic_slug=topic_slug, longdate=_longdate, duration=_duration, number=lambda n: f"{n:,}"
    )
    env.globals.update(csp=CSP, asset_version=SITE_VERSION, line_chart=line_chart, sparkline=sparkline, swatch=swatch)
    return env


ENV = _environment()


@dataclass(frozen=True)
class DaySummary:
    """What listings, feeds and tag pages show of a day (kept in the build manifest)."""

    date: str
    title: str
    summary: str
    tags: tuple[str, ...]
    categories: tuple[str, ...]
    demo: bool
    brief: tuple[str, ...] = ()

    @classmethod
    def of(cls, day: DayInput) -> DaySummary:
        p = day.payload
        return cls(
            day.date, p.title, plain_text(p.summary, 320), tuple(p.tags), tuple(p.categories), p.demo, tuple(day.brief)
        )


@dataclass(frozen=True)
class Page:
    path: str  # relative to the site root, POSIX
    hash: str
    render: Callable[[], bytes]


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps([SITE_VERSION, *parts], sort_keys=True, default=str).encode()).hexdigest()[:24]


def _render(template: str, **context: object) -> bytes:
    return ENV.get_template(template).render(**context).encode()


def _note(note: Note) -> dict:
    body = without_sources_section(note.markdown) if note.sources else note.markdown
    return {**note.model_dump(), "html": render_markdown(body, drop_title=True)}


def day_pages(
    day_sha: str, load: Callable[[], DayInput], day: str, prev_day: str | None, next_day: str | None
) -> list[Page]:
    """The day page and, when the day has one, its dashboard page."""

    def page() -> bytes:
        d = load()
        return _render(
            "day.html.j2",
            day=d,
            p=d.payload,
            k=d.kpis,
            missing=d.all_missing(),
            sections=[{"heading": s.heading, "html": render_markdown(s.markdown)} for s in d.payload.sections],
            notes=[_note(n) for n in d.notes],
            analyses=[_note(n) for n in d.analyses],
            prev_day=prev_day,
            next_day=next_day,
        )

    def dashboard() -> bytes:
        # Sanitized when collected, and again here: the copy on disk is input like any other.
        return _render("dashboard.html.j2", date=day, dashboard_html=sanitize_html(load().dashboard_html or "")[0])

    pages = [Page(f"reports/{day}/index.html", _hash(day_sha, prev_day, next_day), page)]
    pages.append(Page(f"reports/{day}/dashboard/index.html", _hash("dashboard", day_sha), dashboard))
    return pages


def _listing(prefix: str, days: list[DaySummary], history: dict | None = None, **context: object) -> list[Page]:
    """``prefix/index.html`` and ``prefix/page/N/index.html``, newest first; ``history`` on page 1 only."""
    chunks = [days[i : i + PER_PAGE] for i in range(0, len(days), PER_PAGE)] or [[]]
    base = f"/{prefix}/" if prefix else "/"
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        url = base if number == 1 else f"{base}page/{number}/"
        page = {
            "number": number,
            "pages": len(chunks),
            "first_number": len(days) - (number - 1) * PER_PAGE,
            "prev": (base if number == 2 else f"{base}page/{number - 1}/") if number > 1 else None,
            "next": f"{base}page/{number + 1}/" if number < len(chunks) else None,
        }
        path = url.lstrip("/") + "index.html"
        ctx = {**context, "days": chunk, "page": page, "history": history if number == 1 else None}

        def render(ctx: dict = ctx) -> bytes:
            return _render("listing.html.j2", **ctx)

        pages.append(Page(path, _hash(path, ctx), render))
    return pages


def _counts(days: Iterable[DaySummary], attr: str, key: Callable[[str], str] = str) -> list[dict]:
    counts: dict[str, int] = {}
    for d in days:
        for name in {key(n) for n in getattr(d, attr)}:
            counts[name] = counts.get(name, 0) + 1
    return [{"name": n, "count": c} for n, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].casefold()))]


def index_pages(days_desc: list[DaySummary], *, site_url: str) -> list[Page]:
    """Home listing, tag and category pages, search, feed, latest, 404 and days.json."""
    topics = current_topics()
    categories = _counts(days_desc, "categories")
    tags = _counts(days_desc, "tags", topics.key)
    marks = mentions(days_desc, topics)
    history = histories(marks)
    newest = days_desc[0].date if days_desc else None
    pages = _listing(
        "",
        days_desc,
        heading="NeuroHelix — every day of AI research",
        lede=f"{len(days_desc)} daily reports, newest first." if days_desc else "No day published yet.",
        show_tools=bool(days_desc),
        first_day=days_desc[-1].date if days_desc else "",
        last_day=newest or "",
        all_categories=categories,
    )
    for kind, terms, attr in (("categories", categories, "categories"), ("tags", tags, "tags")):
        label = "Categories" if kind == "categories" else "Tags"
        pages.append(
            _static_page(
                f"{kind}/index.html",
                "terms.html.j2",
                heading=label,
                kind=kind,
                terms=terms,
                lede=f"{len(terms)} {kind}; each links to the days it describes.",
            )
        )
        by_slug: dict[str, list[DaySummary]] = {}
        names: dict[str, str] = {}
        key = topics.key if kind == "tags" else str
        for d in days_desc:
            for name in dict.fromkeys(key(n) for n in getattr(d, attr)):
                by_slug.setdefault(slug(name), []).append(d)
                names.setdefault(slug(name), name)
        for term_slug, term_days in by_slug.items():
            heading = f"{'Category' if kind == 'categories' else 'Tag'}: {names[term_slug]}"
            topic_history = history.get(names[term_slug]) if kind == "tags" else None
            pages += _listing(
                f"{kind}/{term_slug}",
                term_days,
                history=history_context(topic_history) if topic_history else None,
                heading=heading,
                show_tools=False,
                lede=f"{len(term_days)} day{'s' if len(term_days) != 1 else ''}, newest first.",
            )
    weeks = weeks_of(days_desc)
    pages.append(
        _static_page("trends/index.html", "trends.html.j2", trends=trends_context(marks, history), weeks=list(weeks)[-8:][::-1])
    )
    for week, week_days_ in weeks.items():
        pages.append(_static_page(f"weeks/{week}/index.html", "week.html.j2", w=week_context(week, week_days_, marks)))
    pages.append(_static_page("search/index.html", "search.html.j2", categories=[c["name"] for c in categories]))
    pages.append(_static_page("404.html", "notfound.html.j2"))
    if newest:
        pages.append(_static_page("latest/index.html", "latest.html.j2", date=newest))
        redirects = f"/latest /reports/{newest}/ 302\n/latest/ /reports/{newest}/ 302\n".encode()
        pages.append(Page("_redirects", _hash("_redirects", newest), lambda: redirects))
    updated = f"{newest}T00:00:00Z" if newest else datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    pages.append(
        _static_page(
            "feed.xml", "feed.xml.j2", entries=_feed_entries(days_desc, weeks), updated=updated, site_url=site_url.rstrip("/")
        )
    )
    days_json = json.dumps([d.date for d in reversed(days_desc)]).encode()
    pages.append(Page("days.json", _hash("days.json", days_json.decode()), lambda: days_json))
    for asset in sorted(STATIC.iterdir()):
        data = asset.read_bytes()
        pages.append(Page(f"assets/{asset.name}", _hash("asset", asset.name), lambda data=data: data))
    return pages


def _static_page(path: str, template: str, **context: object) -> Page:
    return Page(path, _hash(path, context), lambda: _render(template, **context))


def _feed_entries(days_desc: list[DaySummary], weeks: dict[str, list[DaySummary]]) -> list[dict]:
    """The newest days, and a week entry for each of their weeks, dated by the week's last day."""
    days = days_desc[:FEED_ENTRIES]
    entries = [
        {"title": d.title, "path": f"/reports/{d.date}/", "updated": d.date, "categories": d.categories,
         "summary": " ".join([*d.brief, d.summary]), "order": 1}
        for d in days
    ]
    for week in dict.fromkeys(iso_week(date.fromisoformat(d.date)) for d in days):
        in_week = weeks[week]
        briefs = [f"{d.date}: {d.brief[0]}" for d in in_week if d.brief]
        entries.append(
            {"title": f"NeuroHelix week {week}", "path": f"/weeks/{week}/", "updated": in_week[-1].date,
             "categories": (), "summary": " ".join(briefs) or f"{len(in_week)} daily reports.", "order": 0}
        )
    return sorted(entries, key=lambda e: (e["updated"], e["order"]), reverse=True)
