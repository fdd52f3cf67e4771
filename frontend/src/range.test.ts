import { describe, expect, it } from "vitest";

import { apiParams, instantToZonedInput, queryOfRange, rangeFromQuery, zonedInputToInstant } from "./range";
import type { Range } from "./range";

describe("the range in the URL", () => {
  it("defaults to the last 24 hours", () => {
    expect(rangeFromQuery("")).toEqual({ kind: "preset", preset: "24h" });
    expect(rangeFromQuery("?range=90d")).toEqual({ kind: "preset", preset: "24h" });
  });

  it("reads presets and custom windows", () => {
    expect(rangeFromQuery("?range=7d")).toEqual({ kind: "preset", preset: "7d" });
    expect(rangeFromQuery("?start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00%2B01:00")).toEqual({
      kind: "custom",
      start: "2026-11-01T00:00:00Z",
      end: "2026-11-02T00:00:00+01:00",
    });
  });

  it("ignores custom windows without offsets or with one end only", () => {
    expect(rangeFromQuery("?start=2026-11-01T00:00:00&end=2026-11-02T00:00:00Z").kind).toBe("preset");
    expect(rangeFromQuery("?start=2026-11-01T00:00:00Z&range=30d")).toEqual({ kind: "preset", preset: "30d" });
  });

  it.each<Range>([
    { kind: "preset", preset: "24h" },
    { kind: "preset", preset: "30d" },
    { kind: "custom", start: "2026-11-01T00:00:00.000Z", end: "2026-11-08T12:00:00.000Z" },
  ])("round-trips %j", (range) => {
    expect(rangeFromQuery(queryOfRange(range))).toEqual(range);
  });
});

describe("the API parameters of one load", () => {
  const now = new Date("2026-11-26T09:13:27.512Z");

  it("pins a preset's end to the load's moment", () => {
    expect(Object.fromEntries(apiParams({ kind: "preset", preset: "7d" }, now))).toEqual({
      range: "7d",
      end: "2026-11-26T09:13:27.512Z",
    });
  });

  it("passes a custom window as it is", () => {
    const range: Range = { kind: "custom", start: "2026-11-01T00:00:00Z", end: "2026-11-02T00:00:00Z" };
    expect(Object.fromEntries(apiParams(range, now))).toEqual({ start: range.start, end: range.end });
  });
});

describe("custom range inputs on a zone's wall clock", () => {
  it.each([
    ["2026-11-27T00:00", "Asia/Kolkata", "2026-11-26T18:30:00.000Z"],
    ["2026-11-27T00:00", "Pacific/Chatham", "2026-11-26T10:15:00.000Z"],
    ["2026-03-08T01:30", "America/New_York", "2026-03-08T06:30:00.000Z"],
    ["2026-03-08T03:30", "America/New_York", "2026-03-08T07:30:00.000Z"],
    ["2026-11-01T01:30", "America/New_York", "2026-11-01T05:30:00.000Z"], // the first of two
    ["2026-11-27T09:05", "UTC", "2026-11-27T09:05:00.000Z"],
  ])("%s in %s is %s", (value, zone, instant) => {
    expect(zonedInputToInstant(value, zone)).toBe(instant);
    expect(instantToZonedInput(instant, zone)).toBe(value);
  });

  it("moves a skipped wall time on by the change", () => {
    // 02:30 does not exist in New York on 8 March 2026: clocks went from 02:00 to 03:00.
    const instant = zonedInputToInstant("2026-03-08T02:30", "America/New_York")!;
    expect(instantToZonedInput(instant, "America/New_York")).toBe("2026-03-08T03:30");
  });

  it("refuses what is not a wall time", () => {
    expect(zonedInputToInstant("", "UTC")).toBeNull();
    expect(zonedInputToInstant("2026-11-27 09:05", "UTC")).toBeNull();
  });
});
