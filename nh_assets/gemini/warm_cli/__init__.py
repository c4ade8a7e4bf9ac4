"""The warm CLI: prompts served by Gemini CLI processes kept running in ACP mode (``gemini --acp``).

A one-shot call starts a whole CLI (about 260 MB and over a second of CPU) for every prompt.
Here a per-machine warm CLI service (``service``), started on demand by the first step that
needs it (``client``), keeps CLIs running and gives each prompt a fresh ACP session
(``connection``), so nothing carries from one prompt to the next. Rows differ only in
per-session settings; the process configuration keys the service (``endpoint``). Every API
request still crosses a rate gate (``rate_gate``) that takes a rate permit from the shared
bucket, and each warm CLI holds a machine-wide process permit (``warm_process``). With API-key
auth one CLI serves several prompts at once, each session sent to a gate of its own
(``auth``; its gates are ``gemini.lent_gates``).
"""
