// From API answers to the rows the charts draw. Pure, so it is tested without a browser.

import { exact } from "./format";

export interface TimeBar {
  key: string; // the series, as the legend names it
  unit: string;
  bucket: number; // its bucket's place in the series
  label: string; // its bucket's start, "(partial bucket)" after it when partial
  x1: Date;
  x2: Date;
  value: number;
  partial: boolean;
  title: string;
}

export interface SeriesPart<B> {
  key: string;
  value: (bucket: B) => number;
  unit: string;
}

interface Bucket {
  start: string;
  end: string;
  partial: boolean;
}

/** One bar per bucket and part, the parts stacked in the bucket's slot (stack) or side by
 * side within it (beside), the slot from ``place`` of its start to ``place`` of its end (the
 * wall clock of the zone shown). Every bar's title holds the exact figures of its bucket. */
export function timeBars<B extends Bucket>(
  series: B[],
  parts: SeriesPart<B>[],
  layout: "stack" | "beside",
  label: (start: string) => string,
  place: (instant: string) => Date,
): TimeBar[] {
  return series.flatMap((bucket, position) => {
    const start = place(bucket.start).getTime();
    const width = place(bucket.end).getTime() - start;
    const named = label(bucket.start) + (bucket.partial ? " (partial bucket)" : "");
    const title = [
      named,
      ...parts.map((part) => `${part.key}: ${exact(part.value(bucket))} ${part.unit}`),
    ].join("\n");
    return parts.map((part, index) => {
      const slot = layout === "stack" ? [0, 1] : [index / parts.length, (index + 1) / parts.length];
      return {
        key: part.key,
        unit: part.unit,
        bucket: position,
        label: named,
        x1: new Date(start + slot[0] * width),
        x2: new Date(start + slot[1] * width),
        value: part.value(bucket),
        partial: bucket.partial,
        title,
      };
    });
  });
}

export interface RankedBar {
  id: string; // unique within the chart
  label: string;
  kind: string; // what the bar's colour tells: "agent", "user", "model", "other"
  value: number;
  title: string;
}

/** The ranked items, then one bar for all the others if there are any. */
export function rankedBars<T, O extends { count: number } | null>(
  items: T[],
  other: O,
  describe: (item: T) => { id: string; label: string; kind: string },
  value: (figures: T | NonNullable<O>) => number,
  details: (figures: T | NonNullable<O>) => string[],
): RankedBar[] {
  const bars = items.map((item) => {
    const { id, label, kind } = describe(item);
    return { id, label, kind, value: value(item), title: [label, ...details(item)].join("\n") };
  });
  if (other) {
    const label = `Other (${other.count.toLocaleString("en-US")})`;
    bars.push({
      id: "\u0000other",
      label,
      kind: "other",
      value: value(other as NonNullable<O>),
      title: [label, ...details(other as NonNullable<O>)].join("\n"),
    });
  }
  return bars;
}

/** True when every figure of a summary is zero: the section shows its empty state. */
export function isEmpty(summary: object): boolean {
  return Object.values(summary).every((value) => value === 0);
}
