// Numbers and times for reading: compact on the page, exact on hover, in the viewer's zone.

const compactFormat = new Intl.NumberFormat("en-US", {
  notation: "compact",
  maximumFractionDigits: 1,
});

/** 1.2M, 3.5K, 987, 12.3, 0.25 — for cards and axis ticks: more decimals for smaller
 * figures, so close ticks stay distinct. */
export function compact(value: number): string {
  const size = Math.abs(value);
  if (size >= 1000) return compactFormat.format(value);
  const decimals = size >= 100 ? 1 : size >= 1 ? 2 : 3;
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: decimals }).format(value);
}

/** Every digit that matters: 1,234,567 for counts, 3,456.789012 for hours. */
export function exact(value: number): string {
  return new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 }).format(value);
}

/** "42.5%" of a part in a whole; "–" when the whole is zero. */
export function percent(part: number, whole: number): string {
  if (whole === 0) return "–";
  return new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 }).format(
    part / whole,
  );
}

const DAY_SECONDS = 86_400;

/** A bucket's label in the viewer's time zone (or ``timeZone``): its start, to the minute
 * for buckets shorter than a day, else its date. */
export function bucketLabel(start: string, bucketSeconds: number, timeZone?: string): string {
  const options: Intl.DateTimeFormatOptions =
    bucketSeconds < DAY_SECONDS
      ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }
      : { month: "short", day: "numeric", year: "numeric" };
  const label = new Intl.DateTimeFormat("en-US", { ...options, timeZone }).format(new Date(start));
  return bucketSeconds >= 7 * DAY_SECONDS ? `Week of ${label}` : label;
}

const wallClocks = new Map<string, Intl.DateTimeFormat>();

/** The wall-clock time in ``zone`` at an instant, as the UTC instant with those fields: the
 * charts place bars on the zone's wall clock with a UTC axis, so ticks fall on its
 * midnights and hours. */
export function wallClock(moment: string | Date, zone: string): Date {
  let format = wallClocks.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    });
    wallClocks.set(zone, format);
  }
  const date = typeof moment === "string" ? new Date(moment) : moment;
  const fields = Object.fromEntries(format.formatToParts(date).map((part) => [part.type, part.value]));
  return new Date(Date.UTC(+fields.year, +fields.month - 1, +fields.day, +fields.hour, +fields.minute, +fields.second, date.getUTCMilliseconds()));
}

/** An instant with its zone, as the header's "as of" shows it. */
export function instant(moment: string, timeZone?: string): string {
  return new Intl.DateTimeFormat("en-US", {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone,
    timeZoneName: "short",
  }).format(new Date(moment));
}

const BUCKET_NAMES: Record<string, string> = {
  "5m": "5-minute",
  "15m": "15-minute",
  "30m": "30-minute",
  "1h": "hourly",
  "6h": "6-hour",
  "1d": "daily",
  "7d": "weekly",
};

export function bucketName(bucket: string): string {
  return `${BUCKET_NAMES[bucket] ?? bucket} buckets`;
}

export type Direction = "up" | "down" | "same" | "new";

/** A figure against the same figure over the previous span: "▲ 12%", "▼ 3.5%", "new" (from
 * nothing), "no change". One decimal under 10% and "<0.1%" below that, so a change never
 * reads as 0%. */
export function change(current: number, previous: number): { direction: Direction; text: string } {
  if (current === previous) return { direction: "same", text: "no change" };
  if (previous === 0) return { direction: "new", text: "new" };
  const ratio = Math.abs(current - previous) / Math.abs(previous);
  const digits = ratio < 0.1 ? 1 : 0;
  const shown = new Intl.NumberFormat("en-US", {
    style: "percent",
    minimumFractionDigits: 0,
    maximumFractionDigits: digits,
  }).format(ratio);
  const up = current > previous;
  return { direction: up ? "up" : "down", text: `${up ? "▲" : "▼"} ${ratio < 0.001 ? "<0.1%" : shown}` };
}

/** What a change is against: "previous 24h" for a preset, "previous period" otherwise. */
export function previousSpanName(range: string | null | undefined): string {
  return range ? `previous ${range}` : "previous period";
}
