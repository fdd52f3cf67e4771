import { describe, expect, it } from "vitest";

import { bucketLabel, bucketName, change, compact, exact, instant, percent, previousSpanName, wallClock } from "./format";

describe("numbers", () => {
  it("reads compactly", () => {
    expect(compact(0)).toBe("0");
    expect(compact(987)).toBe("987");
    expect(compact(12.345)).toBe("12.35");
    expect(compact(652.44)).toBe("652.4");
    expect(compact(0.05)).toBe("0.05");
    expect(compact(0.15)).toBe("0.15");
    expect(compact(0.0004)).toBe("0");
    expect(compact(3456.7)).toBe("3.5K");
    expect(compact(1_234_567)).toBe("1.2M");
    expect(compact(2_500_000_000)).toBe("2.5B");
  });

  it("is exact on hover", () => {
    expect(exact(1_234_567)).toBe("1,234,567");
    expect(exact(3456.789012)).toBe("3,456.789012");
    expect(exact(0.000001)).toBe("0.000001");
  });

  it("gives ratios in percent, and a dash for nothing", () => {
    expect(percent(1, 3)).toBe("33.3%");
    expect(percent(5, 5)).toBe("100%");
    expect(percent(0, 0)).toBe("–");
  });
});

describe("bucket labels in the viewer's time zone", () => {
  const start = "2026-11-02T00:00:00Z";

  it.each([
    ["UTC", "Nov 2, 00:00"],
    ["America/New_York", "Nov 1, 19:00"],
    ["Asia/Kolkata", "Nov 2, 05:30"],
    ["Pacific/Chatham", "Nov 2, 13:45"],
  ])("5-minute buckets in %s", (zone, label) => {
    expect(bucketLabel(start, 300, zone)).toBe(label);
  });

  it("daily buckets are dates, in the zone", () => {
    expect(bucketLabel(start, 86_400, "UTC")).toBe("Nov 2, 2026");
    expect(bucketLabel(start, 86_400, "America/Los_Angeles")).toBe("Nov 1, 2026");
  });

  it("weekly buckets say so", () => {
    expect(bucketLabel("2026-11-02T00:00:00Z", 604_800, "UTC")).toBe("Week of Nov 2, 2026");
  });

  it("across a daylight-saving change, the wall clock moves, not the bucket", () => {
    // 2026-11-01 06:00Z is 01:00 EST after New York fell back at 06:00Z.
    expect(bucketLabel("2026-11-01T05:55:00Z", 300, "America/New_York")).toBe("Nov 1, 01:55");
    expect(bucketLabel("2026-11-01T06:00:00Z", 300, "America/New_York")).toBe("Nov 1, 01:00");
  });

  it("the as-of instant names its zone", () => {
    expect(instant("2026-11-02T12:34:56Z", "UTC")).toBe("Nov 2, 2026, 12:34 UTC");
    expect(instant("2026-11-02T12:34:56Z", "Europe/Berlin")).toMatch(/^Nov 2, 2026, 13:34 GMT\+1$/);
  });

  it("names the bucket widths", () => {
    expect(bucketName("5m")).toBe("5-minute buckets");
    expect(bucketName("1h")).toBe("hourly buckets");
    expect(bucketName("7d")).toBe("weekly buckets");
  });
});

describe("the change against the previous span", () => {
  it.each([
    [112, 100, "up", "▲ 12%"],
    [97, 100, "down", "▼ 3%"],
    [100.4, 100, "up", "▲ 0.4%"],
    [0, 100, "down", "▼ 100%"],
    [5, 0, "new", "new"],
    [0, 0, "same", "no change"],
    [250, 100, "up", "▲ 150%"],
  ])("%d against %d is %s %s", (current, previous, direction, text) => {
    expect(change(current, previous)).toEqual({ direction, text });
  });

  it("never reads as 0% when the figures differ", () => {
    for (let previous = 1; previous < 5000; previous += 7) {
      const shown = change(previous + 1, previous).text;
      expect(shown).not.toMatch(/^▲ 0(\.0)?%$/);
      expect(shown.startsWith("▲ ")).toBe(true);
    }
  });

  it("names the span", () => {
    expect(previousSpanName("7d")).toBe("previous 7d");
    expect(previousSpanName(null)).toBe("previous period");
  });
});

describe("the wall clock of a zone", () => {
  it.each([
    ["2026-11-26T18:30:00Z", "Asia/Kolkata", "2026-11-27T00:00:00.000Z"],
    ["2026-11-26T10:15:00Z", "Pacific/Chatham", "2026-11-27T00:00:00.000Z"],
    ["2026-11-01T05:30:00Z", "America/New_York", "2026-11-01T01:30:00.000Z"],
    ["2026-11-01T06:30:00Z", "America/New_York", "2026-11-01T01:30:00.000Z"],
    ["2026-11-27T12:34:56.789Z", "UTC", "2026-11-27T12:34:56.789Z"],
  ])("%s in %s reads %s", (moment, zone, wall) => {
    expect(wallClock(moment, zone).toISOString()).toBe(wall);
  });
});
