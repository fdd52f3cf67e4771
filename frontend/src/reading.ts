// A chart for someone who cannot see it or does not use a mouse: a summary its keyboard stop
// reads out (what it shows, the range, the largest bucket or bar), and its figures as a table.

import type { UsageWindow } from "./api";
import { h } from "./dom";
import { bucketName, exact, instant } from "./format";
import type { RankedBar, TimeBar } from "./rows";

export interface Reading {
  name: string; // the chart's accessible name
  summary: string;
  table: () => HTMLTableElement; // built when it is first shown
}

/** "Nov 27, 2026, 10:05 UTC to Nov 28, 2026, 10:05 UTC, in 5-minute buckets" */
export function spanText(window: Pick<UsageWindow, "start" | "end" | "bucket">, zone: string): string {
  return `${instant(window.start, zone)} to ${instant(window.end, zone)}, in ${bucketName(window.bucket)}`;
}

interface BucketRow {
  label: string;
  bars: TimeBar[]; // one per series, in the legend's order
  total: number;
}

/** The bars of each bucket together, in time order. */
function bucketRows(bars: TimeBar[]): BucketRow[] {
  const rows: BucketRow[] = [];
  for (const bar of bars) {
    const row = rows[bar.bucket] ?? (rows[bar.bucket] = { label: bar.label, bars: [], total: 0 });
    row.bars.push(bar);
    row.total += bar.value;
  }
  return rows.filter((row) => row !== undefined);
}

const figures = (bars: TimeBar[]) => bars.map((bar) => `${bar.key} ${exact(bar.value)} ${bar.unit}`).join(", ");

export function timeSummary(name: string, bars: TimeBar[], span: string): string {
  const rows = bucketRows(bars);
  const largest = rows.reduce<BucketRow | null>((best, row) => (best && best.total >= row.total ? best : row), null);
  const head = `${name}: ${span}; ${rows.length} ${rows.length === 1 ? "bucket" : "buckets"}.`;
  if (!largest || largest.total === 0) return `${head} Nothing in any bucket.`;
  return `${head} Largest bucket: ${largest.label}, ${figures(largest.bars)}.`;
}

const TOP = 3; // the bars a summary names

export function rankedSummary(name: string, bars: RankedBar[], unit: string, span: string): string {
  const head = `${name}: ${span}; ${bars.length} ${bars.length === 1 ? "bar" : "bars"}, largest first.`;
  const named = bars.slice(0, TOP).map((bar) => `${bar.label}, ${exact(bar.value)} ${unit}`);
  return named.length ? `${head} ${named.join("; ")}.` : head;
}

export function timeTable(name: string, bars: TimeBar[]): HTMLTableElement {
  const rows = bucketRows(bars);
  const series = rows[0]?.bars ?? [];
  return table(
    name,
    ["Bucket", ...series.map((bar) => `${bar.key} (${bar.unit})`)],
    rows.map((row) => [row.label, ...row.bars.map((bar) => exact(bar.value))]),
  );
}

export function rankedTable(name: string, bars: RankedBar[], unit: string): HTMLTableElement {
  return table(
    name,
    ["Name", "Kind", `${unit[0].toUpperCase()}${unit.slice(1)}`],
    bars.map((bar) => [bar.label, bar.kind, exact(bar.value)]),
  );
}

/** A table with a caption, a header row and one header cell per row (its first). */
function table(caption: string, head: string[], rows: string[][]): HTMLTableElement {
  const element = document.createElement("table");
  element.createCaption().textContent = caption;
  const header = element.createTHead().insertRow();
  for (const text of head) {
    const cell = document.createElement("th");
    cell.scope = "col";
    cell.textContent = text;
    header.append(cell);
  }
  const body = element.createTBody();
  for (const [first, ...rest] of rows) {
    const row = body.insertRow();
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = first;
    row.append(name);
    for (const text of rest) row.insertCell().textContent = text;
  }
  return element;
}

let readings = 0;

/** The chart as one keyboard stop, named for the chart and described by its summary, then a
 * disclosure that shows its figures as a table. The drawing is hidden from assistive
 * technology unless it holds controls (ranked bars that filter): the summary and the table
 * say what it shows. */
export function readable(chart: Element, reading: Reading): DocumentFragment {
  const id = `chart-summary-${++readings}`;
  if (!chart.querySelector("[tabindex]")) chart.setAttribute("aria-hidden", "true");
  const details = h("details", { class: "as-table" }, h("summary", {}, "Show as table"));
  details.addEventListener("toggle", () => {
    if (details.open && !details.querySelector("table")) details.append(reading.table());
  });
  const fragment = document.createDocumentFragment();
  fragment.append(
    h("div", { class: "plot", tabindex: "0", role: "group", "aria-label": reading.name, "aria-describedby": id }, chart),
    h("p", { class: "visually-hidden", id }, reading.summary),
    details,
  );
  return fragment;
}
