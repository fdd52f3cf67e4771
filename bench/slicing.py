"""The slicing reads of the big org beside their plain counterparts, over HTTP: a zone with
a :30 offset, one filter, compare=previous and groups, each p95 against its target."""

import sys

from bench.load import latency, progress

ZONE = "Asia/Kolkata"


def cases(sections: list[str], presets: list[str]) -> list[tuple[str, str, dict, dict | None, str]]:
    """(label, section path, parameters, plain parameters or None, target) of every case."""
    found = []
    for section in sections:
        for preset in presets:
            plain = {"range": preset}
            found.append(
                (f"{section} {preset} tz={ZONE}", section, {**plain, "tz": ZONE}, plain, "1.5x")
            )
            found.append(
                (
                    f"{section} {preset} compare=previous",
                    section,
                    {**plain, "compare": "previous"},
                    plain,
                    "1.3x",
                )
            )
    for preset in presets:
        plain = {"range": preset}
        found.append(
            (f"llm {preset} model=<top model>", "llm", {**plain, "model": "model-0"}, plain, "1.5x")
        )
        found.append(
            (
                f"llm {preset} identity=<an agent>",
                "llm",
                {**plain, "identity": "agent:id-0"},
                plain,
                "1.5x",
            )
        )
    month = {"range": "30d", "bucket": "1d"}
    found.append(
        ("llm 30d/1d groups by=model", "llm/groups", {**month, "by": "model"}, None, "50ms")
    )
    found.append(
        (
            "llm 30d/1d groups by=identity top=10",
            "llm/groups",
            {**month, "by": "identity", "top": 10},
            None,
            "50ms",
        )
    )
    return found


async def run(base_url: str, org: str, key: str, now, sections, presets, requests: int) -> dict:
    measured: dict[str, dict] = {}
    plain: dict[str, dict] = {}
    rows = {}
    for label, path, params, baseline, target in cases(sections, presets):
        found = await latency(base_url, key, f"/orgs/{org}/usage/{path}", params, now, requests)
        progress(f"slicing {label}", found)
        row = {**found, "target": target}
        if baseline is not None:
            base_key = f"{path} {sorted(baseline.items())}"
            if base_key not in plain:
                plain[base_key] = await latency(
                    base_url, key, f"/orgs/{org}/usage/{path}", baseline, now, requests
                )
            row["plain_p95_ms"] = plain[base_key]["p95_ms"]
            row["ratio"] = found["p95_ms"] / row["plain_p95_ms"]
            row["met"] = row["ratio"] <= float(target.rstrip("x"))
        else:
            row["met"] = found["p95_ms"] <= float(target.rstrip("ms"))
        rows[label] = row
    print(file=sys.stderr)
    measured["cases"] = rows
    return measured


def report(found: dict) -> None:
    header = f"{'p50':>7}{'p95':>7}{'plain p95':>11}{'ratio':>7}  target"
    print(f"\n{'slicing read (bench-10m)':<42}{header}")
    for label, row in found["cases"].items():
        plain = f"{row['plain_p95_ms']:>11.1f}{row['ratio']:>6.2f}x" if "ratio" in row else " " * 18
        verdict = "met" if row["met"] else "NOT MET"
        figures = f"{row['p50_ms']:>7.1f}{row['p95_ms']:>7.1f}{plain}"
        print(f"{label:<42}{figures}  {row['target']} {verdict}")
