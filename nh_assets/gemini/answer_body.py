"""One generation answer as JSON documents, whichever shape the API sent it in.

The rate gate reads every answer on its way to the CLI (usage, grounding, why it ended), and the
API answers in three shapes: a JSON object, a JSON array of stream chunks, or server-sent events
(``alt=sse``). Reading them is one job, done here once.
"""

from __future__ import annotations

import json
from typing import Any


def answer_documents(body: bytes) -> list[Any]:
    """The JSON documents of one generation answer: an object, a JSON array of stream chunks, or
    server-sent events (``alt=sse``); what does not parse is skipped."""
    text = body.decode("utf-8", errors="replace").strip()
    if text.startswith("data:") or "\ndata:" in text:
        docs = []
        for line in text.splitlines():
            if line.startswith("data:"):
                try:
                    docs.append(json.loads(line[5:].strip()))
                except ValueError:
                    continue
        return docs
    try:
        doc = json.loads(text or "null")
    except ValueError:
        return []
    return doc if isinstance(doc, list) else [doc]
