import { describe, expect, it } from "vitest";

import { isEmpty, rankedBars, timeBars } from "./rows";

const series = [
  { start: "2026-11-02T00:00:00Z", end: "2026-11-02T01:00:00Z", partial: true, a: 1, b: 2 },
  { start: "2026-11-02T01:00:00Z", end: "2026-11-02T02:00:00Z", partial: false, a: 3, b: 0 },
];
const asIs = (instant: string) => new Date(instant);
const parts = [
  { key: "A", value: (bucket: (typeof series)[number]) => bucket.a, unit: "tokens" },
  { key: "B", value: (bucket: (typeof series)[number]) => bucket.b, unit: "tokens" },
];

describe("bars over time", () => {
  it("stacks every part over its whole bucket", () => {
    const bars = timeBars(series, parts, "stack", (start) => start, asIs);
    expect(bars).toHaveLength(4);
    expect(bars.map((bar) => [bar.key, bar.x1.toISOString(), bar.x2.toISOString(), bar.value])).toEqual([
      ["A", "2026-11-02T00:00:00.000Z", "2026-11-02T01:00:00.000Z", 1],
      ["B", "2026-11-02T00:00:00.000Z", "2026-11-02T01:00:00.000Z", 2],
      ["A", "2026-11-02T01:00:00.000Z", "2026-11-02T02:00:00.000Z", 3],
      ["B", "2026-11-02T01:00:00.000Z", "2026-11-02T02:00:00.000Z", 0],
    ]);
  });

  it("puts parts side by side within their bucket", () => {
    const bars = timeBars(series, parts, "beside", (start) => start, asIs);
    expect(bars.slice(0, 2).map((bar) => [bar.x1.toISOString(), bar.x2.toISOString()])).toEqual([
      ["2026-11-02T00:00:00.000Z", "2026-11-02T00:30:00.000Z"],
      ["2026-11-02T00:30:00.000Z", "2026-11-02T01:00:00.000Z"],
    ]);
  });

  it("titles every bar with its bucket's exact figures and partial mark", () => {
    const [first] = timeBars(series, parts, "stack", () => "Nov 2, 00:00", asIs);
    expect(first.partial).toBe(true);
    expect(first.title).toBe("Nov 2, 00:00 (partial bucket)\nA: 1 tokens\nB: 2 tokens");
  });
});

describe("ranked bars", () => {
  const items = [
    { id: "a1", name: "Triage", total: 1_500_000 },
    { id: "a2", name: "Triage", total: 20 },
  ];
  const describeItem = (item: (typeof items)[number]) => ({ id: item.id, label: item.name, kind: "agent" });

  it("keeps the order and adds the others last", () => {
    const bars = rankedBars(items, { count: 3, total: 7 }, describeItem, (f) => f.total, (f) => [`${f.total}`]);
    expect(bars.map((bar) => [bar.id, bar.label, bar.kind, bar.value])).toEqual([
      ["a1", "Triage", "agent", 1_500_000],
      ["a2", "Triage", "agent", 20],
      ["\u0000other", "Other (3)", "other", 7],
    ]);
    expect(bars[0].title).toBe("Triage\n1500000");
  });

  it("has no others bar when nothing is left out", () => {
    expect(rankedBars(items, null, describeItem, (f) => f.total, () => [])).toHaveLength(2);
  });
});

it("a summary of zeros is empty", () => {
  expect(isEmpty({ a: 0, b: 0 })).toBe(true);
  expect(isEmpty({ a: 0, b: 0.001 })).toBe(false);
});
