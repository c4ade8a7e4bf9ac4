"""A test model that cites a source no search returned, and a search service that fails once in a while.

A subclass of the fake Gemini API, answering through its two hooks (``answer``, ``refusal``):

- for the prompt ids in ``invents_for``, the model writes its answer with one more citation, a
  plausible report URL it made up (``MADE_UP_URL``), beside the sources its search returned (the
  fake appends those, as a model that searched would);
- a search request (the CLI's web-search model, ``googleSearch`` grounding) whose query contains
  ``failing_search``, when one is given, is answered ``400 INVALID_ARGUMENT``, as the API answers
  a request it will not serve; the CLI turns that into a tool error for the model, which answers anyway.

Everything else is the demo's answer, with grounding redirects that the test can expire.
"""

from __future__ import annotations

from nh_assets.demo.answers import parse_prompt_contract, render_fake_response
from nh_assets.demo.api import FakeGeminiAPI

MADE_UP_URL = "https://www.ai-policy-monitor.example/reports/2026/eu-ai-act-enforcement-update"
SEARCH_MODEL = "gemini-3-flash-preview"


class InventiveModel(FakeGeminiAPI):
    def __init__(self, *, invents_for: tuple[str, ...], failing_search: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.invents_for = invents_for
        self.failing_search = failing_search

    def refusal(self, model: str, prompt: str) -> int | None:
        # The search request's only text is its query (0.61.0's web-search tool).
        failing = self.failing_search is not None and self.failing_search in prompt
        return 400 if model == SEARCH_MODEL and failing else None

    def answer(self, model: str, prompt: str) -> str:
        text = render_fake_response(prompt)
        if parse_prompt_contract(prompt)["prompt_id"] in self.invents_for:
            text = text.rstrip() + f"\n\nSee also the [AI Policy Monitor enforcement update]({MADE_UP_URL}).\n"
        return text
