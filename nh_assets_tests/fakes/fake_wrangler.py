"""A stand-in ``wrangler`` executable: records how it was called, prints what wrangler 3/4 prints.

Nothing leaves the machine. Behaviour is chosen per test through environment variables:

- ``FAKE_WRANGLER_SCENARIO``: ok | project_not_found | auth | network | no_url
- ``FAKE_WRANGLER_LOG``: JSONL file receiving one record per call: argv, cwd, whether
  ``CLOUDFLARE_API_TOKEN`` was set and its sha256 (never the token itself)
"""

import hashlib
import json
import os
import sys


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
            handle.write(json.dumps(entry) + "\n")
    scenario = os.environ.get("FAKE_WRANGLER_SCENARIO", "ok")
    project = argv[argv.index("--project-name") + 1] if "--project-name" in argv else "?"
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
    print("🌍  Uploading... (3/3)\n")
    print("✨ Success! Uploaded 2 files (1 already uploaded) (0.84 sec)\n")
    print("🌎 Deploying...")
    if scenario != "no_url":
        print(f"✨ Deployment complete! Take a peek over at https://3f2a9c1e.{project}.pages.dev")
    else:
        print("✨ Deployment complete!")
    return 0


if __name__ == "__main__":
    sys.exit(main())
