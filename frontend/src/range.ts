// The time range the page shows, kept in the URL's query so a view can be shared.

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

/** A ``datetime-local`` input's value (the viewer's wall-clock time) as a UTC instant. */
export function localInputToInstant(value: string): string | null {
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? null : moment.toISOString();
}

/** A UTC instant as a ``datetime-local`` input's value in the viewer's zone. */
export function instantToLocalInput(instant: string): string {
  const moment = new Date(instant);
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}` +
    `T${pad(moment.getHours())}:${pad(moment.getMinutes())}`
  );
}
