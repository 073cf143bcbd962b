"""Prometheus metrics for one server: messages in, replies out, handling time, outbox backlog.

Each server gets its own registry, so several apps in one process (tests, the benchmark) never
share counters.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.5, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages_in = Counter(
            "propbot_messages_in",
            "Messages received from residents and staff",
            ["channel"],
            registry=self.registry,
        )
        self.replies = Counter(
            "propbot_replies", "Immediate replies produced", ["channel"], registry=self.registry
        )
        self.rejected = Counter(
            "propbot_requests_rejected",
            "Webhook requests refused (bad signature, bad body, ...)",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "propbot_handling_seconds",
            "Time to handle one inbound message",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.deferred = Counter(
            "propbot_replies_deferred",
            "WeChat replies sent later through the outbox (slow handling)",
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "propbot_outbox_backlog", "Outbox rows waiting to be sent", registry=self.registry
        )

    def render(self, backlog: Callable[[], int]) -> bytes:
        self.outbox_backlog.set(backlog())
        return generate_latest(self.registry)
