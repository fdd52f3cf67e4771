// The usage API as the page uses it: one GET per section, typed as DESIGN §4 documents it.

export type SectionName = "llm" | "compute" | "storage" | "platform";
export const SECTIONS: SectionName[] = ["llm", "compute", "storage", "platform"];

export interface UsageWindow {
  start: string;
  end: string;
  as_of: string;
  range: "24h" | "7d" | "30d" | "custom";
  bucket: string;
  bucket_seconds: number;
}

interface Bucket {
  start: string;
  partial: boolean;
}

export interface TokenSums {
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  total_tokens: number;
  requests: number;
}

export type Other<T> = (T & { count: number }) | null;

export interface LlmUsage {
  window: UsageWindow;
  summary: {
    input_tokens: number;
    cached_tokens: number;
    output_tokens: number;
    successful_requests: number;
    failed_requests: number;
  };
  series: (Bucket & {
    cached_input_tokens: number;
    fresh_input_tokens: number;
    output_tokens: number;
    successful_requests: number;
    failed_requests: number;
  })[];
  top_consumers: (TokenSums & { identity: { kind: "agent" | "user"; id: string; name: string } })[];
  by_model: (TokenSums & { model: string })[];
  other_consumers: Other<TokenSums>;
  other_models: Other<TokenSums>;
}

interface Agent {
  id: string;
  name: string;
}

export interface ComputeFigures {
  cpu_core_hours: number;
  ram_gb_hours: number;
}

export interface ComputeUsage {
  window: UsageWindow;
  summary: ComputeFigures;
  series: (Bucket & ComputeFigures)[];
  top_agents: (ComputeFigures & { agent: Agent })[];
  other_agents: Other<ComputeFigures>;
}

export interface StorageUsage {
  window: UsageWindow;
  summary: { storage_gb_hours: number };
  series: (Bucket & { storage_gb_hours: number })[];
  top_agents: { agent: Agent; storage_gb_hours: number }[];
  other_agents: Other<{ storage_gb_hours: number }>;
}

export interface PlatformUsage {
  window: UsageWindow;
  summary: { threads_created: number; messages_sent: number };
  series: (Bucket & { threads_created: number; messages_sent: number })[];
}

export interface SectionData {
  llm: LlmUsage;
  compute: ComputeUsage;
  storage: StorageUsage;
  platform: PlatformUsage;
}

/** An answer other than 200, with the problem's detail when the API sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    detail: string,
  ) {
    super(detail);
  }
}

export interface Client {
  baseUrl: string;
  org: string;
  token: string;
}

export async function fetchSection<S extends SectionName>(
  client: Client,
  section: S,
  params: URLSearchParams,
): Promise<SectionData[S]> {
  const url = `${client.baseUrl}/orgs/${encodeURIComponent(client.org)}/usage/${section}?${params}`;
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { Authorization: `Bearer ${client.token}`, Accept: "application/json" },
    });
  } catch {
    throw new ApiError(0, "The usage service could not be reached.");
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new ApiError(response.status, problem.detail ?? response.statusText);
  }
  return response.json();
}

/** The API's base URL: the page's meta tag (empty: the page's own origin). */
export function apiBaseUrl(doc: Document): string {
  const configured = doc.querySelector<HTMLMetaElement>('meta[name="usage-api-base"]')?.content;
  return (configured ?? "").replace(/\/+$/, "");
}
