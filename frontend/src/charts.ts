// The page's charts, drawn as SVG by Observable Plot: bars over time and ranked bars.

import * as Plot from "@observablehq/plot";

import { compact } from "./format";
import type { RankedBar, TimeBar } from "./rows";
import type { LimitRule } from "./thresholds";

const MARGIN_LEFT = 52;
const ROW_HEIGHT = 26;

export interface Palette {
  [key: string]: string;
}

/** Colours that read on light and dark backgrounds alike. */
export const COLORS = {
  cached: "#7aa6f5",
  fresh: "#2f6fde",
  output: "#f59e0b",
  cpu: "#2f6fde",
  ram: "#10a37f",
  storage: "#8b5cf6",
  threads: "#2f6fde",
  messages: "#f59e0b",
  agent: "#2f6fde",
  user: "#10a37f",
  model: "#8b5cf6",
  other: "#9ca3af",
};

/** The groups of a split chart, in rank order: distinct hues that read on both schemes. */
export const GROUP_COLORS = [
  "#2f6fde",
  "#f59e0b",
  "#10a37f",
  "#8b5cf6",
  "#ec4899",
  "#0ea5e9",
  "#a16207",
  "#65a30d",
];

/** Bars over time: one rect per bar, its title the bucket's exact figures; partial buckets
 * faded. A legend when there is more than one series, or when ``legend`` asks for one (the
 * groups of a split, however few). A dashed rule at each of ``rules``' limits, labelled, the
 * y scale reaching it. */
export function timeChart(
  bars: TimeBar[],
  palette: Palette,
  options: { width: number; height?: number; yLabel: string; mark: string; legend?: boolean; rules?: LimitRule[] },
): Element {
  const rules = options.rules ?? [];
  const keys = Object.keys(palette);
  // Hairline gaps between bars only where bars are wide enough to keep a visible body.
  const slots = new Set(bars.map((bar) => bar.x1.getTime())).size;
  const inset = (options.width - MARGIN_LEFT) / Math.max(slots, 1) >= 4 ? 0.5 : 0;
  const chart = Plot.plot({
    width: options.width,
    height: options.height ?? 220,
    marginLeft: MARGIN_LEFT,
    style: { background: "transparent", color: "currentColor", fontSize: "12px" },
    x: { type: "utc", label: null }, // bars are on the shown zone's wall clock (format.wallClock)
    y: { label: options.yLabel, grid: true, tickFormat: compact },
    color: {
      domain: keys,
      range: keys.map((key) => palette[key]),
      legend: options.legend ?? keys.length > 1,
    },
    marks: [
      Plot.rectY(
        bars,
        Plot.stackY({
          x1: "x1",
          x2: "x2",
          y: "value",
          z: "key",
          fill: "key",
          order: keys,
          fillOpacity: (bar: TimeBar) => (bar.partial ? 0.45 : 1),
          title: "title",
          inset,
          ariaDescription: MARK,
        }),
      ),
      Plot.ruleY([0]),
      // After the bars, so a limit they pass stays in sight; its y is in the y scale's domain.
      ...rules.flatMap((rule) => [
        Plot.ruleY([rule], { y: "limit", title: "description", strokeWidth: 1.5, strokeDasharray: "6 4", className: "limit-rule" }),
        Plot.text([rule], {
          y: "limit", text: "label", frameAnchor: "right", textAnchor: "end", dy: -7, className: "limit-label",
        }),
      ]),
    ],
  });
  // Each rule's group says which limit it draws, for the page's tests and for reading it.
  chart.querySelectorAll(".limit-rule").forEach((group, index) => {
    const rule = rules[index];
    group.setAttribute("data-limit", String(rule.limit));
    group.setAttribute("data-threshold", rule.id);
    group.setAttribute("data-measure", rule.measure);
  });
  return unlabelled(chart, options.mark);
}

/** Horizontal bars in the given order, coloured by kind, each titled with exact figures.
 * With ``choose``, every bar that ``nameOf`` names is a control (click, or Enter or Space when
 * focused) with that accessible name. */
export interface RankedOptions {
  width: number;
  xLabel: string;
  mark: string; // names its bars' group (data-mark), for the page's tests
  choose?: (bar: RankedBar) => void;
  nameOf?: (bar: RankedBar) => string | null;
}

export function rankedChart(bars: RankedBar[], palette: Palette, options: RankedOptions): Element {
  const labels = new Map(bars.map((bar) => [bar.id, bar.label]));
  const longest = Math.max(...bars.map((bar) => truncate(bar.label).length), 4);
  const kinds = Object.keys(palette).filter((kind) => bars.some((bar) => bar.kind === kind));
  const chart = Plot.plot({
    width: options.width,
    height: 50 + bars.length * ROW_HEIGHT,
    marginTop: 10,
    marginBottom: 40,
    marginLeft: Math.min(12 + longest * 7, options.width / 2),
    marginRight: 48,
    style: { background: "transparent", color: "currentColor", fontSize: "12px" },
    x: { label: options.xLabel, grid: true, tickFormat: compact, nice: true },
    y: {
      domain: bars.map((bar) => bar.id),
      label: null,
      tickFormat: (id: string) => truncate(labels.get(id) ?? id),
    },
    color: {
      domain: kinds,
      range: kinds.map((kind) => palette[kind]),
      legend: kinds.length > 1,
    },
    marks: [
      Plot.barX(bars, {
        x: "value",
        y: "id",
        fill: "kind",
        title: "title",
        insetTop: 3,
        insetBottom: 3,
        ariaDescription: MARK,
      }),
      Plot.text(bars, {
        x: "value",
        y: "id",
        text: (bar: RankedBar) => compact(bar.value),
        textAnchor: "start",
        dx: 4,
        fill: "currentColor",
      }),
      Plot.ruleX([0]),
    ],
  });
  unlabelled(chart, options.mark);
  if (options.choose) asControls(chart, bars, options.choose, options.nameOf ?? (() => null));
  return chart;
}

const SVG = "http://www.w3.org/2000/svg";
const MARK = "\u0000bars"; // finds the bars' group once Plot has drawn it

/** Plot names each mark's group with aria-label ("bar", "x-axis tick"), which ARIA forbids on
 * an SVG g without a role; the chart's summary and table say what it shows instead. The bars'
 * group keeps ``mark`` as data-mark. */
function unlabelled(chart: Element, mark: string): Element {
  for (const group of chart.querySelectorAll("g[aria-label], g[aria-description]")) {
    if (group.getAttribute("aria-description") === MARK) group.setAttribute("data-mark", mark);
    group.removeAttribute("aria-label");
    group.removeAttribute("aria-description");
  }
  return chart;
}

/** Plot draws one rect per bar, in the bars' order: each one named becomes a button. Its
 * tooltip (the bar's figures) moves to a group around it, which the browser shows just the
 * same, so that the button's name is the whole of its text. */
function asControls(
  chart: Element,
  bars: RankedBar[],
  choose: (bar: RankedBar) => void,
  nameOf: (bar: RankedBar) => string | null,
): void {
  const rects = chart.querySelectorAll<SVGRectElement>("g[data-mark] rect");
  rects.forEach((rect, index) => {
    const bar = bars[index];
    const name = bar ? nameOf(bar) : null;
    if (!bar || !name) return;
    const tooltip = document.createElementNS(SVG, "g");
    rect.replaceWith(tooltip);
    tooltip.append(...rect.querySelectorAll("title"), rect);
    rect.setAttribute("role", "button");
    rect.setAttribute("tabindex", "0");
    rect.setAttribute("aria-label", name);
    rect.classList.add("control");
    rect.addEventListener("click", () => choose(bar));
    rect.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      choose(bar);
    });
  });
}

function truncate(label: string): string {
  return label.length > 28 ? `${label.slice(0, 27)}…` : label;
}
