"""A program that writes down the whole environment it was given, then answers like the real one.

It reads nothing from its environment (that is what is under test): the dump goes beside the
executable (``<argv0>.env.json``), and the answer is chosen from its arguments — a Gemini CLI
JSON document for ``-p``, a wrangler deployment line for ``pages deploy``, nothing otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    Path(sys.argv[0] + ".env.json").write_text(json.dumps(dict(os.environ)))
    if "-p" in sys.argv:
        print(json.dumps({"response": "# env dump\n\nanswer", "stats": {"models": {}}}))
    elif sys.argv[1:3] == ["pages", "deploy"]:
        print("✨ Deployment complete! Take a peek over at https://0123abcd.neurohelix.pages.dev")
    return 0
