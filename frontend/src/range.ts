// The time range the page shows, kept in the URL's query so a view can be shared.

import { wallClock } from "./format";

export type Preset = "24h" | "7d" | "30d";
export const PRESETS: { value: Preset; label: string }[] = [
  { value: "24h", label: "Last 24h" },
  { value: "7d", label: "Last 7d" },
  { value: "30d", label: "Last 30d" },
];

export type Range = { kind: "preset"; preset: Preset } | { kind: "custom"; start: string; end: string };

export const DEFAULT_RANGE: Range = { kind: "preset", preset: "24h" };

/** The range a page URL's query names; anything unreadable falls back to the last 24h. */
export function rangeFromQuery(search: string): Range {
  const query = new URLSearchParams(search);
  const start = query.get("start");
  const end = query.get("end");
  if (start && end && isInstant(start) && isInstant(end)) {
    return { kind: "custom", start, end };
  }
  const preset = PRESETS.find((p) => p.value === query.get("range"));
  return preset ? { kind: "preset", preset: preset.value } : DEFAULT_RANGE;
}

/** The page URL's query for a range. */
export function queryOfRange(range: Range): string {
  const query =
    range.kind === "preset"
      ? new URLSearchParams({ range: range.preset })
      : new URLSearchParams({ start: range.start, end: range.end });
  return `?${query}`;
}

/** The API parameters of one page load: every section gets the same ``end``, so the four
 * answers are one snapshot. */
export function apiParams(range: Range, now: Date): URLSearchParams {
  if (range.kind === "custom") {
    return new URLSearchParams({ start: range.start, end: range.end });
  }
  return new URLSearchParams({ range: range.preset, end: now.toISOString() });
}

function isInstant(text: string): boolean {
  return /(Z|[+-]\d\d:\d\d)$/.test(text) && !Number.isNaN(Date.parse(text));
}

/** A ``datetime-local`` input's value, a wall-clock time in ``zone``, as a UTC instant: the
 * earliest instant whose wall clock reads it; a time skipped by a daylight-saving change moves
 * on by the change, as clocks do. */
export function zonedInputToInstant(value: string, zone: string): string | null {
  const match = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)$/.exec(value);
  if (!match) return null;
  const [year, month, day, hour, minute] = match.slice(1).map(Number);
  const wanted = Date.UTC(year, month - 1, day, hour, minute);
  if (Number.isNaN(wanted)) return null;
  // The zone's offsets half a day either side: a change in between is the only one nearby.
  const offsetAt = (moment: number) => wallClock(new Date(moment), zone).getTime() - moment;
  const before = offsetAt(wanted - 43_200_000);
  const after = offsetAt(wanted + 43_200_000);
  const readsIt = [wanted - before, wanted - after]
    .filter((moment) => wallClock(new Date(moment), zone).getTime() === wanted)
    .sort((a, b) => a - b);
  return new Date(readsIt[0] ?? wanted - before).toISOString();
}

/** A UTC instant as a ``datetime-local`` input's value: its wall clock in ``zone``. */
export function instantToZonedInput(instant: string, zone: string): string {
  return wallClock(instant, zone).toISOString().slice(0, 16);
}
