"""/metrics: the batched call counters give exactly what Prometheus's own observe() gives."""

from __future__ import annotations

import asyncio
import random

from prometheus_client import CollectorRegistry, Histogram

from timserver.server import observability


def _samples(histogram: Histogram, name: str) -> dict[tuple[str, str], float]:
    found = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.labels.get("command") == name:
                found[(sample.name, sample.labels.get("le", ""))] = sample.value
    return found


def test_tally_matches_prometheus_observe_bucket_for_bucket() -> None:
    rnd = random.Random(5)
    name = f"test_cmd_{rnd.randrange(10**9)}"  # series of its own in the global registry
    values = [rnd.choice([0.0, 0.0005, 0.001, 5.0, 7.0]) for _ in range(50)]
    values += [rnd.expovariate(200) for _ in range(500)]
    reference = Histogram("ref_duration_seconds", "reference", ["command"],
                          buckets=observability._BOUNDS[:-1], registry=CollectorRegistry())
    for v in values:
        reference.labels(name).observe(v)

    async def feed() -> None:
        for i, v in enumerate(values):
            observability.observe(name, 60007 if i % 10 == 0 else 0, v)
    asyncio.run(feed())
    before = _samples(observability.LATENCY, name)
    assert before == {} or before[("timserver_request_duration_seconds_count", "")] == 0
    observability.render()  # a scrape flushes

    got = _samples(observability.LATENCY, name)
    want = _samples(reference, name)
    assert {k[1]: v for k, v in got.items() if k[0].endswith("_bucket")} == \
        {k[1]: v for k, v in want.items() if k[0].endswith("_bucket")}
    assert got[("timserver_request_duration_seconds_count", "")] == len(values)
    assert abs(got[("timserver_request_duration_seconds_sum", "")] - sum(values)) < 1e-9
    calls = {s.labels["code"]: s.value for m in observability.REQUESTS.collect()
             for s in m.samples if s.labels.get("command") == name and s.name.endswith("_total")}
    assert calls == {"0": 495, "60007": 55}
    limited = [s.value for m in observability.RATE_LIMITED.collect() for s in m.samples
               if s.labels.get("command") == name and s.name.endswith("_total")]
    assert limited == [55]


def test_an_idle_process_flushes_on_its_own() -> None:
    name = "test_cmd_idle"

    async def one_call_then_idle() -> None:
        observability.observe(name, 0, 0.002)
        await asyncio.sleep(observability.FLUSH_EVERY + 0.3)  # no scrape, no other call
    asyncio.run(one_call_then_idle())
    counts = [s.value for m in observability.LATENCY.collect() for s in m.samples
              if s.labels.get("command") == name and s.name.endswith("_count")]
    assert counts == [1]
