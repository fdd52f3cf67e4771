import statistics


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    cut = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"p50_ms": cut[49], "p95_ms": cut[94], "p99_ms": cut[98], "n": len(samples_ms)}
