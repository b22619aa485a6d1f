"""`/metrics` through prometheus_client: the engine's counters and gauges, plus latency histograms per model.

Each app has its own `CollectorRegistry`, so several apps (tests) in one process never collide. Counters
and gauges are read from `Engine.stats()` at scrape time; the histograms are observed as requests end.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pixiu.serve.engine import Engine
from pixiu.serve.generation import Generation

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds; from a tiny model's first token on CPU to a long answer of a large one."""

_COUNTERS = (  # (name without _total, help, stats key)
    ("pixiu_prompt_tokens", "Prompt tokens of accepted requests.", "prompt_tokens"),
    ("pixiu_generated_tokens", "Tokens generated.", "generated_tokens"),
    ("pixiu_requests_rejected", "Requests refused with 429 because the queue was full.", "rejected"),
    ("pixiu_scored_answers", "Answers scored by reward models (POST /v1/score).", "scored_answers"),
)
_GAUGES = (
    ("pixiu_tokens_per_second", "Tokens generated per second over the last 10 seconds.", "tokens_per_second"),
    ("pixiu_queue_depth", "Requests waiting to start.", "waiting"),
    ("pixiu_active_sequences", "Requests being generated now.", "active"),
    ("pixiu_adapters_loaded", "LoRA adapters loaded.", "adapters"),
    ("pixiu_adapter_bytes", "Memory allocated for adapter weights (every slot, used or free).", "adapter_bytes"),
)


class ServeMetrics:
    """The Prometheus metrics of one app over `engine`."""

    def __init__(self, engine: Engine):
        self.registry = CollectorRegistry()
        self.registry.register(_EngineCollector(engine))
        self.time_to_first_token = Histogram(
            "pixiu_time_to_first_token_seconds",
            "Seconds from accepting a request to its first generated token.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "pixiu_request_latency_seconds",
            "Seconds from accepting a request until the engine ended it.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe(self, generation: Generation) -> None:
        """Record a finished request's time to first token (if it got a token) and latency."""
        if generation.first_token_s is not None:
            self.time_to_first_token.labels(generation.model).observe(generation.first_token_s)
        if generation.latency_s is not None:
            self.request_latency.labels(generation.model).observe(generation.latency_s)

    def text(self) -> bytes:
        """Every metric in Prometheus text format."""
        return generate_latest(self.registry)


class _EngineCollector(Collector):
    """Reads the engine's counters and gauges at each scrape."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        """The engine's figures as metric families."""
        stats = self.engine.stats()
        requests = CounterMetricFamily(
            "pixiu_requests", "Finished requests by model and finish reason.", labels=["model", "finish_reason"]
        )
        for (model, reason), count in sorted(stats["requests"].items()):
            requests.add_metric([model, reason], count)
        yield requests
        scores = CounterMetricFamily(
            "pixiu_score_requests", "Scoring requests (POST /v1/score) answered, by reward model.", labels=["model"]
        )
        for model, count in sorted(stats["score_requests"].items()):
            scores.add_metric([model], count)
        yield scores
        for name, help_text, key in _COUNTERS:
            yield CounterMetricFamily(name, help_text, value=stats[key])
        for name, help_text, key in _GAUGES:
            yield GaugeMetricFamily(name, help_text, value=stats[key])
