"""The site's full-text index, built by Pagefind at build time (no server, no other host).

Pagefind (pinned in package.json, run from ``node_modules/.bin``) reads the built HTML, indexes
only the ``data-pagefind-body`` of day pages, and writes ``pagefind/``: a small entry file, a
WebAssembly search core and the index split into chunks, so a visitor downloads the chunks for
the words typed, not the whole index. It re-indexes every page each build: it has no incremental
mode, and a full index stays cheap next to rendering.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from nh_assets import subprocesses
from nh_assets.child_env import SITE_BUILD, child_env
from nh_assets.redaction import redact


class SearchIndexError(Exception):
    """Pagefind could not index the site: one line with the cause and the fix."""


@dataclass(frozen=True)
class SearchIndex:
    pages: int | None
    duration_s: float


def build_search_index(site_root: Path, *, pagefind_cli: str, timeout_s: float = 300.0) -> SearchIndex:
    cli = shutil.which(pagefind_cli)
    if cli is None:
        raise SearchIndexError(
            f"Pagefind {pagefind_cli!r} not found — run `bash scripts/setup.sh` (npm ci installs it into "
            "node_modules/.bin) or set NH_PAGEFIND_CLI to its path"
        )
    shutil.rmtree(site_root / "pagefind", ignore_errors=True)
    started = time.monotonic()
    # The one child-process runner (deadline, group kill, bounded drain), with the site build's
    # allow-listed environment: indexing needs no credential.
    done = subprocesses.run(
        [cli, "--site", str(site_root)], env=child_env(SITE_BUILD), cwd=str(site_root), timeout_s=timeout_s,
        merge_stderr=True, redact=redact,
    )
    if done.timed_out:
        raise SearchIndexError(
            f"Pagefind did not finish indexing {site_root} within {timeout_s:.0f}s — check the machine's load"
        )
    output = done.stdout
    if done.returncode != 0 or not (site_root / "pagefind" / "pagefind.js").is_file():
        last = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
        raise SearchIndexError(
            f"Pagefind failed (exit {done.returncode}): {last[:300]} — run `{pagefind_cli} --site {site_root}` "
            "by hand to see its full output"
        )
    pages = None
    for line in output.splitlines():
        if line.strip().startswith("Indexed") and line.strip().endswith(("page", "pages")):
            pages = int(line.split()[1])
    return SearchIndex(pages=pages, duration_s=time.monotonic() - started)
