"""Response post-processing by plugins: every `process_response` implementation rewrites the answer in turn."""

from __future__ import annotations

from pixiu.plugins import get_plugin_manager


def process_response(domain: str, text: str) -> str:
    """Pass `text` through each plugin's `process_response` (in pluggy's call order) and return the result.

    pluggy gives every implementation the caller's arguments, so the chain is folded here: each
    implementation sees the text as the previous one left it; returning None keeps it unchanged.
    """
    hook = get_plugin_manager().hook.process_response
    for impl in reversed(hook.get_hookimpls()):  # pluggy calls the last registered first
        if impl.wrapper or impl.hookwrapper:
            continue
        arguments = {"domain": domain, "text": text}
        rewritten = impl.function(**{name: arguments[name] for name in impl.argnames})
        if rewritten is not None:
            text = rewritten
    return text
