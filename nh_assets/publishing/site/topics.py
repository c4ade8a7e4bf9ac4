"""One topic per idea: how a tag a model wrote becomes the topic the trends and tag pages count.

Models spell the same idea many ways (``GPUs``, ``gpu``, ``GPU``; ``large language models`` and
``LLM``), and a trend counted per spelling is split into noise. A tag is normalised (case,
punctuation, a plural last word) and then looked up in the alias table
``registry/topic_aliases.tsv``, whose rows say which obvious synonyms are one topic. The table is
validated when it is read, with ``PATH:LINE: cause — fix`` for every bad row, so a typo stops the
build instead of silently merging the wrong topics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from nh_assets.settings import REPO_ROOT

DEFAULT_ALIASES_PATH = REPO_ROOT / "registry" / "topic_aliases.tsv"
_NOT_WORD = re.compile(r"[^0-9a-z]+")
# Words that end in "s" without being plurals; the alias table covers the rarer cases.
_SINGULAR_ENDINGS = ("ss", "us", "is", "ics", "as", "os")
_SINGULAR_WORDS = frozenset(
    {"news", "series", "species", "means", "kubernetes", "its", "this", "yes", "plus", "thus", "onus", "opus"}
)


class TopicAliasError(Exception):
    """The alias table is unusable: one line per problem, each ``PATH:LINE: cause — fix``."""


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word in _SINGULAR_WORDS:
        return word
    if len(word) == 4 and word.endswith("us"):  # gpus, cpus, tpus: acronyms made plural
        return word[:-1]
    if word.endswith(_SINGULAR_ENDINGS):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    return word[:-1]


def spelling_key(text: str) -> str:
    """Case, punctuation and a plural last word removed: ``"GPUs"`` → ``"gpu"``."""
    words = _NOT_WORD.sub(" ", text.casefold()).split()
    if words:
        words[-1] = _singular(words[-1])
    return " ".join(words)


@dataclass(frozen=True)
class Topics:
    """The normaliser, with the alias table it applies."""

    aliases: Mapping[str, str]

    def key(self, tag: str) -> str:
        spelled = spelling_key(tag)
        return self.aliases.get(spelled, spelled)


def load_topics(path: Path = DEFAULT_ALIASES_PATH) -> Topics:
    """Read and validate the alias table; raises TopicAliasError listing every bad row."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopicAliasError(f"{path}: file not found — restore registry/topic_aliases.tsv from the repository") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopicAliasError(f"{path}: cannot read ({exc}) — save it as a UTF-8 text file") from None
    problems: list[str] = []
    aliases: dict[str, tuple[str, int]] = {}
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        where = f"{path}:{number}"
        if not header_seen:
            header_seen = True
            if [c.strip() for c in cells] != ["alias", "topic"]:
                problems.append(f"{where}: header is {line!r} — the first row must be alias<TAB>topic")
            continue
        if len(cells) != 2:
            problems.append(f"{where}: {len(cells)} cell{'s' * (len(cells) != 1)} — write exactly alias<TAB>topic")
            continue
        alias, topic = spelling_key(cells[0]), spelling_key(cells[1])
        if not alias or not topic:
            problems.append(f"{where}: an empty side — both the alias and the topic need a word")
        elif alias == topic:
            problems.append(f"{where}: {cells[0]!r} already normalises to {topic!r} — delete the row")
        elif alias in aliases and aliases[alias][0] != topic:
            first = aliases[alias][1]
            problems.append(f"{where}: {cells[0]!r} is already an alias of {aliases[alias][0]!r} (line {first}) — keep one")
        else:
            aliases[alias] = (topic, number)
    for alias, (topic, number) in aliases.items():
        if topic in aliases:
            problems.append(
                f"{path}:{number}: {topic!r} is itself an alias of {aliases[topic][0]!r} — point {alias!r} at "
                f"{aliases[topic][0]!r} directly"
            )
    if problems:
        raise TopicAliasError("\n".join(problems))
    return Topics(MappingProxyType({alias: topic for alias, (topic, _n) in aliases.items()}))


_loaded: dict[tuple[str, int, int], Topics] = {}


def current_topics(path: Path = DEFAULT_ALIASES_PATH) -> Topics:
    """``load_topics`` once per version of the file (builds in a long-lived process see edits)."""
    try:
        st = path.stat()
        version = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return load_topics(path)  # raises with the cause and the fix
    if version not in _loaded:
        _loaded.clear()
        _loaded[version] = load_topics(path)
    return _loaded[version]
