// What every section shares: its frame and states (loading, error, empty), cards and notes.

import { h } from "./dom";
import { change, compact, exact } from "./format";
import { type Reading, readable } from "./reading";
import type { LimitLine } from "./thresholds";

export function sectionFrame(id: string, title: string): { root: HTMLElement; body: HTMLElement } {
  const body = h("div", { class: "section-body", "aria-live": "polite" });
  const root = h("section", { class: "usage-section", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title),
    body,
  );
  return { root, body };
}

export function loading(body: HTMLElement, cards: number): void {
  body.setAttribute("aria-busy", "true");
  body.replaceChildren(
    h("div", { class: "cards" }, ...Array.from({ length: cards }, () => h("div", { class: "card skeleton" }))),
    h("div", { class: "chart skeleton tall" }),
  );
}

export function failed(body: HTMLElement, message: string, retry: () => void): void {
  body.removeAttribute("aria-busy");
  body.replaceChildren(
    h("div", { class: "error", role: "alert" },
      h("p", {}, `This section could not be loaded: ${message}`),
      h("button", { type: "button", class: "retry", onclick: () => retry() }, "Retry"),
    ),
  );
}

export function filled(body: HTMLElement, ...children: Node[]): void {
  body.removeAttribute("aria-busy");
  body.replaceChildren(...children);
}

export function empty(): HTMLElement {
  return h("p", { class: "empty" }, "No usage in this range");
}

/** A card's figure over the span before the window (compare=previous), and that span's name. */
export interface Compared {
  previous: number;
  span: string; // "previous 24h"
}

/** A summary card: ``value`` for reading, ``title`` (the exact figures) on hover, and its
 * change against the previous span when there is one. */
export function card(
  label: string,
  value: Node | string,
  title: string,
  options: { sub?: string; current?: number; compared?: Compared; unit?: string } = {},
): HTMLElement {
  const { sub, current, compared, unit = "" } = options;
  return h("div", { class: "card" },
    h("div", { class: "card-label" }, label),
    h("div", { class: "card-value", title, tabindex: "0" }, value),
    sub ? h("div", { class: "card-sub" }, sub) : null,
    compared && current !== undefined ? delta(current, compared, unit) : null,
  );
}

export function figureCard(label: string, value: number, unit = "", compared?: Compared): HTMLElement {
  return card(label, compact(value), `${exact(value)}${unit ? ` ${unit}` : ""}`, { current: value, compared, unit });
}

/** "▲ 12% vs previous 24h": one colour whichever way, since more usage is neither good nor
 * bad; the arrow and words carry the direction. */
function delta(current: number, compared: Compared, unit: string): HTMLElement {
  const { direction, text } = change(current, compared.previous);
  const against = direction === "new" ? `none in ${compared.span}` : `vs ${compared.span}`;
  return h("div", {
    class: `card-delta delta-${direction}`,
    title: `${compared.span}: ${exact(compared.previous)}${unit ? ` ${unit}` : ""}`,
  }, h("span", { class: "delta-change" }, text), ` ${against}`);
}

/** A chart under its title (and actions), readable without sight or a mouse when it has a
 * reading; "no usage" in its place when there is no chart. */
export function chartBox(
  title: string,
  chart: Element | null,
  options: { note?: string; actions?: Node[]; reading?: Reading } = {},
): HTMLElement {
  const { note, actions, reading } = options;
  return h("figure", { class: "chart" },
    actions?.length
      ? h("figcaption", { class: "chart-head" }, h("span", {}, title), h("span", { class: "chart-actions" }, ...actions))
      : title ? h("figcaption", {}, title) : null,
    chart && reading ? readable(chart, reading) : chart ?? h("p", { class: "empty" }, "No usage in this range"),
    note ? h("p", { class: "note" }, note) : null,
  );
}

/** A section's thresholds, one line each: how much of its limit the period holding now has
 * used, and the figures; a line over its limit is marked, in words and in colour. */
export function limitList(lines: LimitLine[]): HTMLElement | null {
  if (lines.length === 0) return null;
  return h("ul", { class: "limits", "aria-label": "Usage thresholds" },
    ...lines.map((line) =>
      h("li", { class: line.over ? "limit over" : "limit", "data-threshold": line.id, title: line.title },
        line.over ? h("span", { class: "limit-mark", "aria-hidden": "true" }, "▲ ") : null,
        h("span", { class: "limit-text" }, line.text),
        h("span", { class: "limit-figures" }, ` · ${line.figures}`),
        line.over ? h("span", { class: "limit-over" }, " · over the limit") : null,
      ),
    ),
  );
}

export function note(text: string): HTMLElement {
  return h("p", { class: "note" }, text);
}

export function cardRow(cards: Node[]): HTMLElement {
  return h("div", { class: "cards" }, ...cards);
}

/** Charts side by side where there is room. */
export function grid(...charts: Node[]): HTMLElement {
  return h("div", { class: "chart-grid" }, ...charts);
}

/** The width of one of two charts side by side, or the whole width on a narrow screen. */
export function halfWidth(width: number): number {
  return width >= 760 ? Math.floor((width - 24) / 2) : width;
}

/** Under a chart over time: what its faded bars mean, when it has any. */
export function partialNote(series: { partial: boolean }[]): string | undefined {
  return series.some((bucket) => bucket.partial)
    ? "Faded bars: buckets only partly inside the range, so partly counted."
    : undefined;
}
