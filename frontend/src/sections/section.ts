// A section as a small spec: its cards, its charts and its note. One renderer draws every
// section from its spec: the filter chips, the cards, then the charts, or "no usage" when
// the summary is all zeros, then the note.

import type { GroupKey, GroupsData, SectionData, SectionName, UsageWindow } from "../api";
import { COLORS, GROUP_COLORS, type Palette, type RankedOptions, rankedChart, timeChart } from "../charts";
import { h } from "../dom";
import { bucketLabel, previousSpanName, wallClock } from "../format";
import { type Compared, cardRow, chartBox, empty, note, partialNote } from "../panel";
import { rankedSummary, rankedTable, spanText, timeSummary, timeTable } from "../reading";
import { isEmpty, type RankedBar, type SeriesPart, timeBars } from "../rows";
import type { LimitRule } from "../thresholds";
import type { Filters } from "../view";

/** What a section's charts are drawn with besides its answer: the width, the zone, its
 * split and groups, and what the viewer can do from them. */
export interface Context<S extends SectionName> {
  width: number;
  zone: string;
  span: string; // the answer's window in words, for the charts' summaries
  filters: Filters;
  split: string | null;
  groups: GroupsData[S] | "loading" | Error | null; // the split chart's groups
  choose(filter: string, value: string, label: string): void; // a drill-down
  splitBy(split: string | null): void;
  download(): void; // the chart over time as CSV: its series or, split, its groups
  rules(chart: string): LimitRule[]; // the thresholds' limits a chart over time (its mark) draws
}

export interface Section<S extends SectionName> {
  name: S;
  title: string;
  cards: number; // how many cards its loading skeleton shows
  cardsOf(data: SectionData[S]): HTMLElement[];
  chartsOf(data: SectionData[S], context: Context<S>): Node[];
  note?: string;
}

export function render<S extends SectionName>(
  section: Section<S>,
  data: SectionData[S],
  context: Context<S>,
  chips: Node | null,
  limits: Node | null, // the section's thresholds, under its cards
): Node[] {
  const cards = cardRow(section.cardsOf(data));
  const notes = section.note ? [note(section.note)] : [];
  if (isEmpty(data.summary)) return [chips, cards, limits, empty(), ...notes].filter((node) => node !== null);
  return [chips, cards, limits, ...section.chartsOf(data, context), ...notes].filter((node) => node !== null);
}

/** A card's figure over the previous span, when the answer has one (compare=previous). */
export function compared<T>(
  data: { previous?: { summary: T } | null; window: UsageWindow },
  figure: (summary: T) => number,
): Compared | undefined {
  if (!data.previous) return undefined;
  return { previous: figure(data.previous.summary), span: previousSpanName(data.window.range) };
}

interface Bucket {
  start: string;
  end: string;
  partial: boolean;
}

type Window = Pick<UsageWindow, "start" | "end" | "bucket" | "bucket_seconds">;

type ChartOptions = {
  name?: string; // how the chart is named to assistive technology, if not its title
  layout: "stack" | "beside";
  width: number;
  height?: number;
  yLabel: string;
  mark: string; // names its bars' group (data-mark), for the page's tests
  withNote?: boolean;
  legend?: boolean;
  rules?: LimitRule[]; // thresholds' limits, drawn across it
};

/** A chart over time: one series per part, stacked in each bucket or side by side in it,
 * coloured by ``palette`` (part key → colour); the partial-bucket note under the last one;
 * ``actions`` (split, download) beside its title. */
export function timeline<B extends Bucket>(
  title: string,
  data: { series: B[]; window: Window },
  parts: (SeriesPart<B> & { color: string })[],
  options: ChartOptions & { zone: string; actions?: Node[] },
): HTMLElement {
  const seconds = data.window.bucket_seconds;
  const bars = timeBars(
    data.series,
    parts,
    options.layout,
    (start) => bucketLabel(start, seconds, options.zone),
    (instant) => wallClock(instant, options.zone),
  );
  const palette: Palette = Object.fromEntries(parts.map((part) => [part.key, part.color]));
  const name = options.name ?? title;
  return chartBox(title, timeChart(bars, palette, options), {
    note: options.withNote === false ? undefined : partialNote(data.series),
    actions: options.actions,
    reading: {
      name,
      summary: [
        timeSummary(name, bars, spanText(data.window, options.zone)),
        ...(options.rules ?? []).map((rule) => `${rule.description}.`),
      ].join(" "),
      table: () => timeTable(name, bars),
    },
  });
}

/** Ranked bars under their title, with their summary and table. */
export function ranked(title: string, bars: RankedBar[], palette: Palette, options: RankedOptions & { span: string }): HTMLElement {
  return chartBox(title, rankedChart(bars, palette, options), {
    reading: {
      name: title,
      summary: rankedSummary(title, bars, options.xLabel, options.span),
      table: () => rankedTable(title, bars, options.xLabel),
    },
  });
}

interface GroupBucket extends Bucket {
  values: number[];
}

/** A chart over time split into groups (§4.3): each group's ``figure`` stacked, the others
 * last, a legend naming them. */
export function groupTimeline<G extends { key: GroupKey; series: Bucket[] }>(
  title: string,
  answer: { groups: G[]; other: { series: Bucket[] } | null; window: Window },
  figure: (bucket: G["series"][number]) => number,
  unit: string,
  options: ChartOptions & { zone: string; actions?: Node[] },
): HTMLElement {
  const all = [...answer.groups, ...(answer.other ? [answer.other] : [])];
  const names = uniqueNames([...answer.groups.map((group) => groupName(group.key)), "Other"]);
  const series: GroupBucket[] = (all[0]?.series ?? []).map((bucket, index) => ({
    start: bucket.start,
    end: bucket.end,
    partial: bucket.partial,
    values: all.map((group) => figure(group.series[index] as G["series"][number])),
  }));
  const parts = all.map((_, index) => ({
    key: index < answer.groups.length ? names[index] : names[names.length - 1],
    value: (bucket: GroupBucket) => bucket.values[index],
    unit,
    color: index < answer.groups.length ? GROUP_COLORS[index % GROUP_COLORS.length] : COLORS.other,
  }));
  return timeline(title, { series, window: answer.window }, parts, { ...options, legend: true });
}

/** How a group is named in a legend: its model, identity or agent name, or org. */
export function groupName(key: GroupKey): string {
  return key.model ?? key.identity?.name ?? key.agent?.name ?? key.org ?? "?";
}

function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return count === 1 ? name : `${name} (${count})`;
  });
}

/** The split selector and the download button beside a chart over time's title. */
export function chartActions<S extends SectionName>(
  section: string,
  context: Context<S>,
  splits: [string | null, string][],
): Node[] {
  const select = h("select", {
    "aria-label": `Split ${section} over time by`,
    onchange: (event: Event) => {
      const value = (event.target as HTMLSelectElement).value;
      context.splitBy(value === "" ? null : value);
    },
  });
  for (const [value, label] of splits) {
    const option = h("option", { value: value ?? "" }, label);
    option.selected = value === context.split;
    select.append(option);
  }
  const label = h("label", { class: "split" }, "Split by ", select);
  const download = h("button", {
    type: "button",
    class: "download",
    onclick: () => context.download(),
  }, "Download CSV");
  download.setAttribute("aria-label", `Download CSV of ${section} over time`);
  return splits.length > 1 ? [label, download] : [download];
}

/** The split chart while its groups load or when they failed, else the chart itself. */
export function splitChart<S extends SectionName>(
  title: string,
  context: Context<S>,
  actions: Node[],
  draw: (groups: GroupsData[S]) => HTMLElement,
): HTMLElement {
  const groups = context.groups;
  if (groups === "loading" || groups === null) {
    return chartBox(title, h("div", { class: "chart skeleton tall", "aria-busy": "true" }), { actions });
  }
  if (groups instanceof Error) {
    return chartBox(title, h("p", { class: "error", role: "alert" }, `The split could not be loaded: ${groups.message}`), { actions });
  }
  return draw(groups);
}

/** A ranked bar's drill-down: its filter and value, and how it is named ("by model gpt-5");
 * null for the others' bar. */
export type DrillDown = (bar: RankedBar) => { filter: string; value: string; name: string } | null;
