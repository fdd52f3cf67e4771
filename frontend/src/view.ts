// What the page shows beyond the range, kept in the URL's query beside it so reloads and
// shared links keep it: the time zone (when the link names one), each section's filters
// (`llm.model=gpt-5&compute.agent=agt-7`) and each chart's split (`llm.by=model`).

import type { SectionName } from "./api";
import { DEFAULT_RANGE, type Range, queryOfRange, rangeFromQuery } from "./range";

/** The filters each section takes on the page (the API's §4.1 parameters), in chip order. */
export const FILTERS = {
  llm: ["model", "identity"],
  compute: ["agent"],
  storage: ["agent"],
  platform: ["identity"],
} as const satisfies { [S in SectionName]: readonly string[] };

/** What each section's chart over time can be split by besides its own parts (§4.3 `by`). */
export const SPLITS = {
  llm: ["model", "identity"],
  compute: ["agent"],
  storage: ["agent"],
  platform: [],
} as const satisfies { [S in SectionName]: readonly string[] };

export type FilterName<S extends SectionName> = (typeof FILTERS)[S][number];
export type Split<S extends SectionName> = (typeof SPLITS)[S][number];
/** One section's filters: each filter's values, in the order chosen. */
export type Filters = { [name: string]: string[] };

export interface View {
  range: Range;
  zone: string | null; // the URL's `tz`; null: the viewer's own zone
  filters: { [S in SectionName]: Filters };
  splits: { [S in SectionName]: string | null };
}

const MAX_VALUES = 20; // as many values of one filter as the API takes
const SECTION_NAMES = Object.keys(FILTERS) as SectionName[];

export function emptyView(range: Range = DEFAULT_RANGE): View {
  const filters = {} as View["filters"];
  const splits = {} as View["splits"];
  for (const name of SECTION_NAMES) {
    filters[name] = {};
    splits[name] = null;
  }
  return { range, zone: null, filters, splits };
}

/** The view a page URL's query names; what it cannot read is left out. */
export function viewFromQuery(search: string): View {
  const query = new URLSearchParams(search);
  const view = emptyView(rangeFromQuery(search));
  const zone = query.get("tz");
  view.zone = zone && isZone(zone) ? zone : null;
  for (const name of SECTION_NAMES) {
    for (const filter of FILTERS[name]) {
      const values = [...new Set(query.getAll(`${name}.${filter}`).filter((value) => value !== ""))];
      if (values.length > 0) view.filters[name][filter] = values.slice(0, MAX_VALUES);
    }
    const split = query.get(`${name}.by`);
    view.splits[name] = (SPLITS[name] as readonly string[]).includes(split ?? "") ? split : null;
  }
  return view;
}

/** The page URL's query for a view. */
export function queryOfView(view: View): string {
  const query = new URLSearchParams(queryOfRange(view.range));
  if (view.zone) query.set("tz", view.zone);
  for (const name of SECTION_NAMES) {
    for (const [filter, values] of Object.entries(view.filters[name])) {
      for (const value of values) query.append(`${name}.${filter}`, value);
    }
    const split = view.splits[name];
    if (split) query.set(`${name}.by`, split);
  }
  return `?${query}`;
}

/** The zone the page shows times in: the URL's, else the viewer's own. */
export function zoneOf(view: View): string {
  return view.zone ?? modernName(Intl.DateTimeFormat().resolvedOptions().timeZone);
}

// Browsers on older ICU data name some zones by the names IANA has since replaced; the API
// takes both, but the header and file names should read as the viewer knows the place.
const RENAMED: Record<string, string> = {
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Asia/Rangoon": "Asia/Yangon",
  "Europe/Kiev": "Europe/Kyiv",
  "America/Godthab": "America/Nuuk",
  "Atlantic/Faeroe": "Atlantic/Faroe",
  "Pacific/Ponape": "Pacific/Pohnpei",
  "Pacific/Truk": "Pacific/Chuuk",
  "Pacific/Enderbury": "Pacific/Kanton",
};

export function modernName(zone: string): string {
  return RENAMED[zone] ?? zone;
}

/** The view with ``value`` added to (or, if there, removed from) one section's filter. */
export function toggleFilter(view: View, section: SectionName, filter: string, value: string): View {
  const current = view.filters[section][filter] ?? [];
  const values = current.includes(value) ? current.filter((v) => v !== value) : [...current, value];
  const { [filter]: _, ...others } = view.filters[section];
  const sectionFilters = values.length > 0 ? { ...others, [filter]: values } : others;
  return { ...view, filters: { ...view.filters, [section]: sectionFilters } };
}

export function withSplit(view: View, section: SectionName, split: string | null): View {
  return { ...view, splits: { ...view.splits, [section]: split } };
}

/** One section's filters as API query parameters (§4.1: a parameter per value). */
export function filterParams(filters: Filters): [string, string][] {
  return Object.entries(filters).flatMap(([name, values]) => values.map((value): [string, string] => [name, value]));
}

function isZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
