// A section as a small spec: its cards, its charts and its note. One renderer draws every
// section from its spec: the cards, then the charts, or "no usage" when the summary is all
// zeros, then the note.

import type { SectionData, SectionName } from "../api";
import { COLORS, type Palette, timeChart } from "../charts";
import { bucketLabel } from "../format";
import { cardRow, chartBox, empty, note, partialNote } from "../panel";
import { isEmpty, type SeriesPart, timeBars } from "../rows";

export interface Section<S extends SectionName> {
  name: S;
  title: string;
  cards: number; // how many cards its loading skeleton shows
  cardsOf(data: SectionData[S]): HTMLElement[];
  chartsOf(data: SectionData[S], width: number): Node[];
  note?: string;
}

export function render<S extends SectionName>(
  section: Section<S>,
  data: SectionData[S],
  width: number,
): Node[] {
  const cards = cardRow(section.cardsOf(data));
  const notes = section.note ? [note(section.note)] : [];
  if (isEmpty(data.summary)) return [cards, empty(), ...notes];
  return [cards, ...section.chartsOf(data, width), ...notes];
}

interface Bucket {
  start: string;
  partial: boolean;
}

/** A chart over time: one series per part, stacked in each bucket or side by side in it,
 * coloured by ``palette`` (part key → colour); the partial-bucket note under the last one. */
export function timeline<B extends Bucket>(
  title: string,
  data: { series: B[]; window: { bucket_seconds: number } },
  parts: (SeriesPart<B> & { color: keyof typeof COLORS })[],
  options: {
    layout: "stack" | "beside";
    width: number;
    height?: number;
    yLabel: string;
    ariaLabel: string;
    withNote?: boolean;
  },
): HTMLElement {
  const seconds = data.window.bucket_seconds;
  const bars = timeBars(data.series, parts, seconds, options.layout, (start) =>
    bucketLabel(start, seconds),
  );
  const palette: Palette = Object.fromEntries(parts.map((part) => [part.key, COLORS[part.color]]));
  return chartBox(
    title,
    timeChart(bars, palette, options),
    options.withNote === false ? undefined : partialNote(data.series),
  );
}
