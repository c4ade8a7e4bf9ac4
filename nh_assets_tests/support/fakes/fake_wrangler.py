"""A stand-in ``wrangler`` executable: records how it was called, prints what wrangler 3/4 prints.

Nothing leaves the machine. Behaviour is chosen per test through environment variables:

- ``FAKE_WRANGLER_SCENARIO``: ok | project_not_found | auth | network | no_url | unlisted
  (``unlisted``: the deploy succeeds but ``deployment list`` does not show it)
- ``FAKE_WRANGLER_LOG``: JSONL file receiving one record per call: argv, cwd, whether
  ``CLOUDFLARE_API_TOKEN`` was set and its sha256 (never the token itself); for ``pages deploy``
  also every file it was asked to upload (relative path and size)
- ``FAKE_WRANGLER_STATE``: JSON file of the deployments made so far, which ``pages deployment
  list --json`` answers from, newest first, in wrangler 4's own row shape (default: beside the log)
"""

import hashlib
import json
import os
import sys
from pathlib import Path


def _uploads(directory: str) -> list[list]:
    root = Path(directory)
    if not root.is_dir():
        return []
    return sorted([str(p.relative_to(root)), p.stat().st_size] for p in root.rglob("*") if p.is_file())


def _state_path() -> Path | None:
    state = os.environ.get("FAKE_WRANGLER_STATE") or (
        os.environ["FAKE_WRANGLER_LOG"] + ".deployments.json" if os.environ.get("FAKE_WRANGLER_LOG") else ""
    )
    return Path(state) if state else None


def _deployments() -> list[dict]:
    path = _state_path()
    return json.loads(path.read_text()) if path and path.is_file() else []


def _record_deployment(project: str, status: str) -> str:
    rows = _deployments()
    short = hashlib.sha256(f"{project}-{len(rows)}".encode()).hexdigest()[:8]
    row = {
        "Id": f"{short}-5d1e-4c2b-9a7f-0123456789ab",
        "Environment": "Production",
        "Branch": "production",
        "Source": "",
        "Deployment": f"https://{short}.{project}.pages.dev",
        "Status": status,
        "Build": f"https://dash.cloudflare.com/0123abcd/pages/view/{project}/{short}",
    }
    path = _state_path()
    if path:
        path.write_text(json.dumps([row, *rows]))
    return short


def _list(scenario: str) -> int:
    rows = _deployments()
    if scenario == "unlisted":
        rows = rows[1:]  # the newest deployment never shows up
    print(json.dumps(rows, indent=2))
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        print("4.42.0")
        return 0
    token = os.environ.get("CLOUDFLARE_API_TOKEN")
    log = os.environ.get("FAKE_WRANGLER_LOG")
    if log:
        with open(log, "a") as handle:
            entry = {
                "argv": argv,
                "cwd": os.getcwd(),
                "token_set": token is not None,
                "token_sha256": hashlib.sha256(token.encode()).hexdigest() if token else None,
                "send_metrics": os.environ.get("WRANGLER_SEND_METRICS"),
            }
            if argv[:2] == ["pages", "deploy"] and len(argv) > 2:
                entry["uploads"] = _uploads(argv[2])
            handle.write(json.dumps(entry) + "\n")
    scenario = os.environ.get("FAKE_WRANGLER_SCENARIO", "ok")
    project = argv[argv.index("--project-name") + 1] if "--project-name" in argv else "?"
    if argv[:3] == ["pages", "deployment", "list"]:
        return _list(scenario)
    if scenario == "project_not_found":
        print("🌍  Uploading... (3/3)\n")
        print(
            f"✘ [ERROR] A request to the Cloudflare API (/accounts/0123abcd/pages/projects/{project}) failed.\n\n"
            "  Project not found. The specified project name does not match any of your existing projects. "
            "[code: 8000007]\n\n"
            "  If you think this is a bug, please open an issue at: "
            "https://github.com/cloudflare/workers-sdk/issues/new/choose\n",
            file=sys.stderr,
        )
        return 1
    if scenario == "auth":
        print(
            "✘ [ERROR] A request to the Cloudflare API (/memberships) failed.\n\n"
            "  Authentication error [code: 10000]\n",
            file=sys.stderr,
        )
        return 1
    if scenario == "network":
        print("✘ [ERROR] fetch failed\n", file=sys.stderr)
        return 1
    files = len(_uploads(argv[2])) if len(argv) > 2 else 0
    print(f"🌍  Uploading... ({files}/{files})\n")
    print(f"✨ Success! Uploaded {files} files (0 already uploaded) (0.84 sec)\n")
    print("🌎 Deploying...")
    short = _record_deployment(project, "just now")
    if scenario != "no_url":
        print(f"✨ Deployment complete! Take a peek over at https://{short}.{project}.pages.dev")
    else:
        print("✨ Deployment complete!")
    return 0


if __name__ == "__main__":
    sys.exit(main())
