"""Drop-in wire formats for the moderation APIs applications already call, over `moderate_text`.

`openai`: `POST /v1/moderations` (what the official `openai` client, LangChain, LiteLLM and NeMo Guardrails send).
`perspective`: `POST /v1alpha1/comments:analyze` (Google Perspective, shut down at the end of 2026).
`server`: both as ASGI routes, for Gradio's app (`python app.py`) or on their own (`python -m moderation serve`).

The two format modules only translate JSON to `moderate_text` calls and verdicts back to JSON; neither imports a
web framework, and nothing here imports gradio.
"""
from __future__ import annotations


class ApiError(Exception):
    """A request the API refuses: the HTTP status and a message for the caller, written out in each API's own error
    shape. `param` names the offending field and `code` is a short machine-readable reason, where one applies."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
