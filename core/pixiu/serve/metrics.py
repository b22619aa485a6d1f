"""`/metrics` in Prometheus text format, from `Engine.stats()`."""

from __future__ import annotations

_METRICS = (  # (name, type, help, stats key)
    ("pixiu_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", "prompt_tokens"),
    ("pixiu_generated_tokens_total", "counter", "Tokens generated.", "generated_tokens"),
    ("pixiu_requests_rejected_total", "counter", "Requests refused with 429 because the queue was full.", "rejected"),
    ("pixiu_tokens_per_second", "gauge", "Tokens generated per second over the last 10 seconds.", "tokens_per_second"),
    ("pixiu_queue_depth", "gauge", "Requests waiting to start.", "waiting"),
    ("pixiu_active_sequences", "gauge", "Requests being generated now.", "active"),
    ("pixiu_adapters_loaded", "gauge", "LoRA adapters loaded.", "adapters"),
    ("pixiu_adapter_bytes", "gauge", "Memory allocated for adapter weights (every slot, used or free).", "adapter_bytes"),
)


def prometheus_text(stats: dict) -> str:
    """Render engine statistics as Prometheus exposition text."""
    lines = [
        "# HELP pixiu_requests_total Finished requests by model and finish reason.",
        "# TYPE pixiu_requests_total counter",
    ]
    for (model, reason), count in sorted(stats["requests"].items()):
        lines.append(f'pixiu_requests_total{{model="{_label(model)}",finish_reason="{reason}"}} {count}')
    for name, kind, help_text, key in _METRICS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {stats[key]}"]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """Escape a label value."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
