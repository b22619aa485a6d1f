"""Response post-processing by plugins: every `process_response` implementation rewrites the answer in turn."""

from __future__ import annotations

from pixiu.plugins import fold_hook


def process_response(domain: str, text: str) -> str:
    """Pass `text` through each plugin's `process_response` (in pluggy's call order) and return the result.

    Each implementation sees the text as the previous one left it; returning None keeps it unchanged,
    and one that raises is reported and skipped (the answer still goes out).
    """
    return fold_hook("process_response", "text", domain=domain, text=text)
