// An organization's usage thresholds on the page (§10): a line under its section's cards
// ("Input tokens today: 82% of limit"), and a rule at its limit on the chart over time that
// draws its measure one period per bucket. Pure, so it is tested without a browser.

import type { SectionName, Threshold } from "./api";
import { exact, instant } from "./format";
import { type MeasureName, measureOf } from "./measures";
import { type Filters, modernName } from "./view";

const PERIOD_WORDS: Record<string, string> = { day: "today", week: "this week", month: "this month" };
const PER_PERIOD: Record<string, string> = { day: "a day", week: "a week", month: "a month" };
const FILTER_WORDS: Record<string, string> = { model: "model", identity: "consumer", agent: "agent", org: "org" };

const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** "82%", "134%": how much of its limit a figure is, in whole percent, except that a figure
 * under the limit never reads as 100% (99.6%) nor one over it as 100% (100.1%), and a
 * figure above nothing never reads as 0% (<1%). */
export function percentOfLimit(value: number, limit: number): string {
  const ratio = (value * 100) / limit;
  const rounded = Math.round(ratio);
  if (value > 0 && rounded === 0) return "<1%";
  if (rounded !== 100 || value === limit) return `${whole.format(rounded)}%`;
  // Just under or just over: one decimal, rounded away from the limit's 100%.
  const tenths = value < limit ? Math.floor(ratio * 10) : Math.ceil(ratio * 10);
  return `${(tenths / 10).toFixed(1)}%`;
}

/** The same IANA zone, whichever of its names (Asia/Calcutta, Asia/Kolkata) each gives. */
export function sameZone(a: string, b: string): boolean {
  return canonical(a) === canonical(b);
}

function canonical(zone: string): string {
  try {
    return modernName(new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone);
  } catch {
    return zone;
  }
}

/** A threshold's filters in words: "model gpt-5 or gpt-4o, consumer Ann Lee". */
function filterWords(filters: Threshold["filters"], nameOf: (filter: string, value: string) => string): string {
  return Object.entries(filters)
    .filter((entry): entry is [string, string[]] => Array.isArray(entry[1]) && entry[1].length > 0)
    .map(([filter, values]) => `${FILTER_WORDS[filter] ?? filter} ${values.map((value) => nameOf(filter, value)).join(" or ")}`)
    .join(", ");
}

export interface LimitLine {
  id: string;
  text: string; // "Input tokens today (model gpt-5): 82% of limit"
  figures: string; // "820 of 1,000 tokens"
  title: string; // the period, and the limit's zone
  over: boolean; // the figure is over the limit (as the API crosses it: more than the limit)
}

/** A threshold's line under its section's cards. Its period is on the wall clock of the
 * threshold's zone: named when it is not the zone the page shows. ``nameOf`` names a filter's
 * value (a consumer's name for its kind:id). */
export function limitLine(
  threshold: Threshold,
  shownZone: string,
  nameOf: (filter: string, value: string) => string = (_, value) => value,
): LimitLine {
  const measure = measureOf(threshold.section, threshold.measure);
  const { value, start, end } = threshold.current_period;
  const period = PERIOD_WORDS[threshold.period] ?? `this ${threshold.period}`;
  const zone = sameZone(threshold.tz, shownZone) ? "" : ` in ${threshold.tz}`;
  const filters = filterWords(threshold.filters, nameOf);
  const unit = measure.unit ? ` ${measure.unit}` : "";
  return {
    id: threshold.id,
    text: `${measure.name} ${period}${zone}${filters ? ` (${filters})` : ""}: ${percentOfLimit(value, threshold.limit)} of limit`,
    figures: `${exact(value)} of ${exact(threshold.limit)}${unit}`,
    title: `From ${instant(start, threshold.tz)} to ${instant(end, threshold.tz)}; so far ${exact(value)}${unit}, limit ${exact(threshold.limit)}${unit}`,
    over: value > threshold.limit,
  };
}

/** The bucket of the period a threshold counts over: a month has none. */
export const PERIOD_BUCKETS: Record<string, string> = { day: "1d", week: "7d" };

/** What each chart over time (by its mark) draws up from zero in every bucket: the measures
 * a rule at a limit can be read against. In a stack the lower parts add up: cached input,
 * then cached and fresh input, are the input; output, on top of them, is no measure alone.
 * Split, a chart stacks its groups' one figure: the LLM's is all tokens, no summary field;
 * compute's and storage's are their measure, all of it (the top groups and the others). */
export const CHARTED: {
  [S in SectionName]: Record<string, { whole: readonly MeasureName<S>[]; split: readonly MeasureName<S>[] }>;
} = {
  llm: { "tokens over time": { whole: ["cached_tokens", "input_tokens"], split: [] } },
  compute: {
    "cpu over time": { whole: ["cpu_core_hours"], split: ["cpu_core_hours"] },
    "ram over time": { whole: ["ram_gb_hours"], split: ["ram_gb_hours"] },
  },
  storage: { "storage over time": { whole: ["storage_gb_hours"], split: ["storage_gb_hours"] } },
  platform: { "activity over time": { whole: ["threads_created", "messages_sent"], split: [] } },
};

/** How a chart is shown: its answer's bucket and zone, and the section's filters and split. */
export interface Shown {
  bucket: string;
  zone: string;
  filters: Filters;
  split: string | null;
}

export interface LimitRule {
  id: string;
  measure: string;
  limit: number;
  label: string; // by the rule: "limit 1,000,000" ("Input tokens limit 1,000,000" where the chart draws several)
  description: string; // for the chart's summary: "Input tokens limit: 1,000,000 tokens a day"
}

/** The rules a chart draws: a threshold's limit where each bucket is one of its periods on
 * its wall clock, the chart draws its measure up from zero, and counts what it counts (the
 * same filters). */
export function limitRules(thresholds: Threshold[], section: SectionName, chart: string, shown: Shown): LimitRule[] {
  const charted = (CHARTED[section] as Record<string, { whole: readonly string[]; split: readonly string[] }>)[chart];
  if (!charted) return [];
  const measures = shown.split ? charted.split : charted.whole;
  const several = charted.whole.length > 1;
  return thresholds
    .filter((threshold) =>
      threshold.section === section
      && measures.includes(threshold.measure)
      && PERIOD_BUCKETS[threshold.period] === shown.bucket
      && sameZone(threshold.tz, shown.zone)
      && sameFilters(threshold.filters, shown.filters),
    )
    .map((threshold) => {
      const measure = measureOf(section, threshold.measure);
      const limit = exact(threshold.limit);
      return {
        id: threshold.id,
        measure: threshold.measure,
        limit: threshold.limit,
        label: several ? `${measure.name} limit ${limit}` : `limit ${limit}`,
        description: `${measure.name} limit: ${limit}${measure.unit ? ` ${measure.unit}` : ""} ${PER_PERIOD[threshold.period]}`,
      };
    });
}

/** The same filters, each with the same values in whichever order. */
export function sameFilters(given: Threshold["filters"], shown: Filters): boolean {
  const key = (filters: Record<string, string[] | undefined>) =>
    JSON.stringify(
      Object.entries(filters)
        .filter((entry): entry is [string, string[]] => Array.isArray(entry[1]) && entry[1].length > 0)
        .map(([name, values]) => [name, [...new Set(values)].sort()])
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  return key(given) === key(shown);
}
