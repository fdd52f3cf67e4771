import { describe, expect, it } from "vitest";

import { rankedSummary, spanText, timeSummary } from "./reading";
import { timeBars } from "./rows";

const series = [
  { start: "2026-11-02T00:00:00Z", end: "2026-11-02T01:00:00Z", partial: true, a: 1, b: 2 },
  { start: "2026-11-02T01:00:00Z", end: "2026-11-02T02:00:00Z", partial: false, a: 3, b: 1 },
  { start: "2026-11-02T02:00:00Z", end: "2026-11-02T03:00:00Z", partial: false, a: 0, b: 4 },
];
const parts = [
  { key: "Input", value: (bucket: (typeof series)[number]) => bucket.a, unit: "tokens" },
  { key: "Output", value: (bucket: (typeof series)[number]) => bucket.b, unit: "tokens" },
];
const bars = (layout: "stack" | "beside") =>
  timeBars(series, parts, layout, (start) => start.slice(11, 16), (instant) => new Date(instant));

describe("a chart's summary", () => {
  it("names the range, the buckets and the largest bucket with its figures", () => {
    expect(timeSummary("Tokens over time", bars("stack"), "the span")).toBe(
      "Tokens over time: the span; 3 buckets. Largest bucket: 01:00, Input 3 tokens, Output 1 tokens.",
    );
  });

  it("finds the same largest bucket whether its parts are stacked or side by side", () => {
    expect(timeSummary("T", bars("beside"), "s")).toBe(timeSummary("T", bars("stack"), "s"));
  });

  it("says when every bucket is empty", () => {
    const zeros = series.map((bucket) => ({ ...bucket, a: 0, b: 0 }));
    const flat = timeBars(zeros, parts, "stack", (start) => start, (instant) => new Date(instant));
    expect(timeSummary("T", flat, "s")).toBe("T: s; 3 buckets. Nothing in any bucket.");
  });

  it("names the first three ranked bars, largest first as drawn", () => {
    const ranked = ["Ann", "Bo", "Cy", "Di"].map((label, index) => ({
      id: label, label, kind: "user", value: 4000 - index * 1000, title: label,
    }));
    expect(rankedSummary("Top consumers", ranked, "total tokens", "the span")).toBe(
      "Top consumers: the span; 4 bars, largest first. Ann, 4,000 total tokens; Bo, 3,000 total tokens; Cy, 2,000 total tokens.",
    );
  });

  it("gives the span in the shown zone with its bucket size", () => {
    const window = { start: "2026-11-02T00:00:00Z", end: "2026-11-03T00:00:00Z", bucket: "1h" as const };
    expect(spanText(window, "Asia/Kolkata")).toBe(
      "Nov 2, 2026, 05:30 GMT+5:30 to Nov 3, 2026, 05:30 GMT+5:30, in hourly buckets",
    );
  });
});
