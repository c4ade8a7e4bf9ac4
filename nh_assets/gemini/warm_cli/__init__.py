"""A warm Gemini CLI: prompts served by CLI processes kept running in ACP mode (``gemini --acp``).

A one-shot call starts a whole CLI (~1.8 s of CPU, ~260 MB) for every prompt. Here a per-machine
pool (``service``), started on demand by the first step that needs it (``client``), keeps CLIs
running and gives each prompt a fresh ACP session, so nothing carries from one prompt to the
next. Rows differ only in per-session settings; the process configuration keys the pool
(``endpoint``). Every API request still crosses a rate gate (``metered_gate``) that takes a slot
from the shared bucket, and each CLI holds a machine-wide process slot (``warm_process``).
"""
