import { describe, expect, it } from "vitest";

import type { Threshold } from "./api";
import { measureOf } from "./measures";
import { type Shown, limitLine, limitRules, percentOfLimit, sameFilters, sameZone } from "./thresholds";

function threshold(fields: Partial<Omit<Threshold, "current_period">> & { value?: number } = {}): Threshold {
  const { value = 820_000, ...rest } = fields;
  return {
    id: "thr_1",
    org: "acme",
    section: "llm",
    measure: "input_tokens",
    period: "day",
    tz: "UTC",
    limit: 1_000_000,
    filters: {},
    url: "https://hooks.example.com/usage",
    created_at: "2026-11-27T08:00:00Z",
    current_period: { start: "2026-11-27T00:00:00Z", end: "2026-11-28T00:00:00Z", value },
    ...rest,
  };
}

describe("the percentage of a limit", () => {
  it("reads in whole percent, grouped", () => {
    expect(percentOfLimit(820_000, 1_000_000)).toBe("82%");
    expect(percentOfLimit(1_340_000, 1_000_000)).toBe("134%");
    expect(percentOfLimit(1_000_000, 1_000_000)).toBe("100%");
    expect(percentOfLimit(0, 1_000_000)).toBe("0%");
    expect(percentOfLimit(123_456, 1)).toBe("12,345,600%");
    expect(percentOfLimit(2, 3)).toBe("67%");
  });

  it("never reads as the limit when it is not at it, nor as nothing when it is something", () => {
    expect(percentOfLimit(99.96, 100)).toBe("99.9%");
    expect(percentOfLimit(99.5, 100)).toBe("99.5%");
    expect(percentOfLimit(100.01, 100)).toBe("100.1%");
    expect(percentOfLimit(100.4, 100)).toBe("100.4%");
    expect(percentOfLimit(100.5, 100)).toBe("101%");
    expect(percentOfLimit(0.004, 1)).toBe("<1%");
    expect(percentOfLimit(0.005, 1)).toBe("1%");
  });
});

describe("a threshold's line", () => {
  it("names the measure as its card does, the period in words, and the percentage", () => {
    expect(limitLine(threshold(), "UTC").text).toBe("Input tokens today: 82% of limit");
    expect(limitLine(threshold({ period: "week" }), "UTC").text).toBe("Input tokens this week: 82% of limit");
    expect(limitLine(threshold({ period: "month" }), "UTC").text).toBe("Input tokens this month: 82% of limit");
    const compute = threshold({ section: "compute", measure: "cpu_core_hours", limit: 40, value: 10 });
    expect(limitLine(compute, "UTC").text).toBe("CPU core-hours today: 25% of limit");
    const platform = threshold({ section: "platform", measure: "messages_sent", limit: 8, value: 2 });
    expect(limitLine(platform, "UTC").text).toBe("Messages sent today: 25% of limit");
  });

  it("gives the exact figures beside it", () => {
    const line = limitLine(threshold(), "UTC");
    expect(line.figures).toBe("820,000 of 1,000,000 tokens");
    expect(line.title).toBe("From Nov 27, 2026, 00:00 UTC to Nov 28, 2026, 00:00 UTC; so far 820,000 tokens, limit 1,000,000 tokens");
  });

  it("is over only past the limit, as the API crosses it", () => {
    const over = limitLine(threshold({ value: 1_340_000 }), "UTC");
    expect(over.text).toBe("Input tokens today: 134% of limit");
    expect(over.over).toBe(true);
    expect(limitLine(threshold({ value: 1_000_000 }), "UTC").over).toBe(false);
    expect(limitLine(threshold({ value: 999_999 }), "UTC").over).toBe(false);
  });

  it("mentions its filters, named as the chips name them", () => {
    const filtered = threshold({ filters: { model: ["gpt-5"] } });
    expect(limitLine(filtered, "UTC").text).toBe("Input tokens today (model gpt-5): 82% of limit");
    const several = threshold({ filters: { model: ["gpt-5", "gpt-4o"], identity: ["user:usr-1"] } });
    const names: Record<string, string> = { "user:usr-1": "Ann Lee" };
    expect(limitLine(several, "UTC", (_, value) => names[value] ?? value).text).toBe(
      "Input tokens today (model gpt-5 or gpt-4o, consumer Ann Lee): 82% of limit",
    );
  });

  it("names its zone when the page shows another", () => {
    const tokyo = threshold({ tz: "Asia/Tokyo" });
    expect(limitLine(tokyo, "UTC").text).toBe("Input tokens today in Asia/Tokyo: 82% of limit");
    expect(limitLine(tokyo, "Asia/Tokyo").text).toBe("Input tokens today: 82% of limit");
    expect(limitLine(threshold({ tz: "Asia/Calcutta" }), "Asia/Kolkata").text).toBe("Input tokens today: 82% of limit");
  });

  it("reads a measure the page does not know yet by its field's name", () => {
    expect(measureOf("llm", "reasoning_tokens")).toEqual({ name: "Reasoning tokens", unit: "" });
    expect(limitLine(threshold({ measure: "reasoning_tokens" as Threshold["measure"] }), "UTC").text).toBe("Reasoning tokens today: 82% of limit");
  });
});

describe("which chart draws a threshold's limit", () => {
  const daily: Shown = { bucket: "1d", zone: "UTC", filters: {}, split: null };
  const ids = (rules: { id: string }[]) => rules.map((rule) => rule.id);

  it("a day's on daily buckets, a week's on weekly ones, a month's on none", () => {
    const day = threshold({ id: "day" });
    const week = threshold({ id: "week", period: "week" });
    const month = threshold({ id: "month", period: "month" });
    const all = [day, week, month];
    expect(ids(limitRules(all, "llm", "tokens over time", daily))).toEqual(["day"]);
    expect(ids(limitRules(all, "llm", "tokens over time", { ...daily, bucket: "7d" }))).toEqual(["week"]);
    for (const bucket of ["5m", "1h", "6h"]) {
      expect(limitRules(all, "llm", "tokens over time", { ...daily, bucket })).toEqual([]);
    }
  });

  it("only in the zone the chart's days are in", () => {
    const tokyo = threshold({ tz: "Asia/Tokyo" });
    expect(limitRules([tokyo], "llm", "tokens over time", daily)).toEqual([]);
    expect(limitRules([tokyo], "llm", "tokens over time", { ...daily, zone: "Asia/Tokyo" })).toHaveLength(1);
    const calcutta = threshold({ tz: "Asia/Calcutta" });
    expect(limitRules([calcutta], "llm", "tokens over time", { ...daily, zone: "Asia/Kolkata" })).toHaveLength(1);
  });

  it("only where the chart draws the measure up from zero: input and cached at the stack's foot, not output or requests", () => {
    const measures = ["input_tokens", "cached_tokens", "output_tokens", "successful_requests", "failed_requests"] as const;
    const all = measures.map((measure) => threshold({ id: measure, measure }));
    expect(ids(limitRules(all, "llm", "tokens over time", daily))).toEqual(["input_tokens", "cached_tokens"]);
    expect(limitRules(all, "llm", "top consumers", daily)).toEqual([]);
  });

  it("each compute measure on its own chart, split by agent or not", () => {
    const cpu = threshold({ id: "cpu", section: "compute", measure: "cpu_core_hours", limit: 40 });
    const ram = threshold({ id: "ram", section: "compute", measure: "ram_gb_hours", limit: 64 });
    for (const split of [null, "agent"]) {
      expect(ids(limitRules([cpu, ram], "compute", "cpu over time", { ...daily, split }))).toEqual(["cpu"]);
      expect(ids(limitRules([cpu, ram], "compute", "ram over time", { ...daily, split }))).toEqual(["ram"]);
    }
    const storage = threshold({ id: "storage", section: "storage", measure: "storage_gb_hours" });
    expect(ids(limitRules([storage], "storage", "storage over time", { ...daily, split: "agent" }))).toEqual(["storage"]);
  });

  it("none on the LLM chart split by model or consumer: it stacks all tokens", () => {
    const input = threshold();
    expect(limitRules([input], "llm", "tokens over time", { ...daily, split: "model" })).toEqual([]);
    expect(limitRules([input], "llm", "tokens over time", { ...daily, split: "identity" })).toEqual([]);
  });

  it("platform's counts side by side, each from zero", () => {
    const threads = threshold({ id: "threads", section: "platform", measure: "threads_created" });
    const messages = threshold({ id: "messages", section: "platform", measure: "messages_sent" });
    expect(ids(limitRules([threads, messages], "platform", "activity over time", daily))).toEqual(["threads", "messages"]);
  });

  it("only another section's thresholds on its own charts", () => {
    const cpu = threshold({ section: "compute", measure: "cpu_core_hours" });
    expect(limitRules([cpu], "llm", "tokens over time", daily)).toEqual([]);
    expect(limitRules([threshold()], "compute", "cpu over time", daily)).toEqual([]);
  });

  it("only when the chart counts what the threshold counts: the same filters", () => {
    const gpt5 = threshold({ id: "gpt-5", filters: { model: ["gpt-5"] } });
    const unfiltered = threshold({ id: "all" });
    const both = [gpt5, unfiltered];
    expect(ids(limitRules(both, "llm", "tokens over time", daily))).toEqual(["all"]);
    expect(ids(limitRules(both, "llm", "tokens over time", { ...daily, filters: { model: ["gpt-5"] } }))).toEqual(["gpt-5"]);
    expect(limitRules(both, "llm", "tokens over time", { ...daily, filters: { model: ["gpt-5", "gpt-4o"] } })).toEqual([]);
  });

  it("labels the rule with its limit, and with its measure where the chart draws several", () => {
    const [input] = limitRules([threshold()], "llm", "tokens over time", daily);
    expect(input).toEqual({
      id: "thr_1",
      measure: "input_tokens",
      limit: 1_000_000,
      label: "Input tokens limit 1,000,000",
      description: "Input tokens limit: 1,000,000 tokens a day",
    });
    const cpu = threshold({ section: "compute", measure: "cpu_core_hours", limit: 1_000_000 });
    expect(limitRules([cpu], "compute", "cpu over time", daily)[0].label).toBe("limit 1,000,000");
  });
});

describe("the same filters and zones", () => {
  it("compares values in any order, ignoring empty filters", () => {
    expect(sameFilters({ model: ["a", "b"] }, { model: ["b", "a"] })).toBe(true);
    expect(sameFilters({ model: ["a"], identity: [] }, { model: ["a"] })).toBe(true);
    expect(sameFilters({}, {})).toBe(true);
    expect(sameFilters({ model: ["a"] }, {})).toBe(false);
    expect(sameFilters({ model: ["a"] }, { identity: ["a"] })).toBe(false);
    expect(sameFilters({ agent: ["a"], model: ["b"] }, { model: ["b"], agent: ["a"] })).toBe(true);
  });

  it("knows a zone by its old and new names", () => {
    expect(sameZone("Asia/Calcutta", "Asia/Kolkata")).toBe(true);
    expect(sameZone("UTC", "UTC")).toBe(true);
    expect(sameZone("UTC", "Europe/London")).toBe(false);
  });
});
