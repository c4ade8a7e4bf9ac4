"""Failure injection for the fake Gemini API: a test-only subclass, so the demo server has none.

``FailingGeminiAPI(fail_first=N, fail_status=S)`` answers the first N generation requests with
status S and a Google-style error body, then answers normally, through the server's one hook
(``FakeGeminiAPI.refusal``).
"""

from __future__ import annotations

import threading

from nh_assets.demo.api import FakeGeminiAPI


class FailingGeminiAPI(FakeGeminiAPI):
    def __init__(self, *, fail_first: int = 0, fail_status: int = 429, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fail_first = int(fail_first)
        self.fail_status = int(fail_status)
        self._generations = 0
        self._count_lock = threading.Lock()

    def refusal(self, model: str, prompt: str) -> int | None:
        with self._count_lock:
            self._generations += 1
            return self.fail_status if self._generations <= self.fail_first else None
