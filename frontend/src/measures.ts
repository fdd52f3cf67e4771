// Each section's summary figures as the page names them: its cards' labels and units, and
// the words of a threshold on one of them.

import type { SectionData, SectionName } from "./api";

export interface Measure {
  name: string; // as its card is labelled
  unit: string; // as its exact figure is read: "1,234 tokens"
}

/** Every summary field of every section, named once (the compiler checks the list against
 * the contract's summaries). */
export const MEASURES = {
  llm: {
    input_tokens: { name: "Input tokens", unit: "tokens" },
    cached_tokens: { name: "Cached tokens", unit: "tokens" },
    output_tokens: { name: "Output tokens", unit: "tokens" },
    successful_requests: { name: "Successful requests", unit: "requests" },
    failed_requests: { name: "Failed requests", unit: "requests" },
  },
  compute: {
    cpu_core_hours: { name: "CPU core-hours", unit: "core-hours" },
    ram_gb_hours: { name: "RAM GB-hours", unit: "GB-hours" },
  },
  storage: {
    storage_gb_hours: { name: "Storage GB-hours", unit: "GB-hours" },
  },
  platform: {
    threads_created: { name: "Threads created", unit: "threads" },
    messages_sent: { name: "Messages sent", unit: "messages" },
  },
} as const satisfies { [S in SectionName]: { [F in keyof SectionData[S]["summary"]]: Measure } };

export type MeasureName<S extends SectionName> = keyof (typeof MEASURES)[S] & string;

/** A section's measure by its field name; a field the page does not know yet reads as its
 * name ("new_field" → "New field"). */
export function measureOf(section: string, field: string): Measure {
  const known = (MEASURES as Record<string, Record<string, Measure> | undefined>)[section]?.[field];
  if (known) return known;
  const words = field.replace(/_/g, " ");
  return { name: words.charAt(0).toUpperCase() + words.slice(1), unit: "" };
}
