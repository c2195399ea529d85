"""Closed-loop load for bench/peers.py: `clients` processes (multiprocessing, spawn), each
with one keep-alive HTTP/1.1 connection (http.client, the body encoded once) sending the
same GraphQL request back to back for `seconds` from a shared start; the server's CPU
(`cpu()`) is read at that start and after the last answer."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Load:
    requests: int
    failures: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float  # the server's, from the clients' start to the last answer

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def median_ms(self) -> float:
        return round(statistics.median(self.latencies) * 1000, 2) if self.latencies else 0.0


def _client(
    url: str, headers: dict[str, str], body: bytes, seconds: float, ready: Any, results: Any
) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    sent = {"Content-Type": "application/json", **headers}
    latencies, failures = [], 0
    ready.wait()  # every client is up: they start together
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        conn.request("POST", parts.path, body=body, headers=sent)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.monotonic() - now)
        if response.status != 200 or b'"errors"' in payload[:200]:
            failures += 1
    conn.close()
    results.put((latencies, failures))


def run_load(
    url: str,
    headers: dict[str, str],
    request: dict[str, Any],
    clients: int,
    seconds: float,
    cpu: Callable[[], float],
) -> Load:
    """Requests answered by all clients within `seconds` (they start together, once all
    of them are up: a spawned client imports this run's main module first)."""
    body = json.dumps(request).encode()
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(clients + 1), context.Queue()
    processes = [
        context.Process(target=_client, args=(url, headers, body, seconds, ready, results))
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=120)
    cpu_before = cpu()
    outcomes = [results.get(timeout=60 + seconds) for _ in processes]
    cpu_used = cpu() - cpu_before
    for process in processes:
        process.join()
    latencies = [t for seen, _ in outcomes for t in seen]
    return Load(len(latencies), sum(f for _, f in outcomes), seconds, latencies, cpu_used)
