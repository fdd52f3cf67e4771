// The usage API as the page uses it: one GET per section, and the organization's thresholds,
// typed from the service's OpenAPI document (api-types.ts is generated from openapi.yaml: `npm run types`).

import type { components, paths } from "./api-types";

// The sections are the contract's /orgs/{org}/usage/{section} paths; the page lists them in
// the order it shows them, and the compiler checks the list against the contract.
type SectionPath = Extract<keyof paths, `/orgs/{org}/usage/${string}`>;
export type SectionName = SectionPath extends `/orgs/{org}/usage/${infer S}`
  ? S extends `${string}/groups`
    ? never
    : S
  : never;
export const SECTIONS = ["llm", "compute", "storage", "platform"] as const satisfies readonly SectionName[];
type Assert<T extends true> = T;
/** Compiles only while every section of the contract is in SECTIONS. */
export type EverySectionListed = Assert<Exclude<SectionName, (typeof SECTIONS)[number]> extends never ? true : false>;

type Schemas = components["schemas"];

export type UsageWindow = Schemas["WindowOut"];
export type TokenSums = Omit<Schemas["OtherTokens"], "count">;
export type ComputeFigures = Schemas["ComputeSummary"];
export type LlmUsage = Schemas["LlmUsage"];
export type ComputeUsage = Schemas["ComputeUsage"];
export type StorageUsage = Schemas["StorageUsage"];
export type PlatformUsage = Schemas["PlatformUsage"];

export interface SectionData {
  llm: LlmUsage;
  compute: ComputeUsage;
  storage: StorageUsage;
  platform: PlatformUsage;
}

/** Each section's groups over time (§4.3): its series split by one dimension. */
export interface GroupsData {
  llm: Schemas["LlmGroups"];
  compute: Schemas["ComputeGroups"];
  storage: Schemas["StorageGroups"];
  platform: Schemas["PlatformGroups"];
}
export type GroupKey = Schemas["GroupKey"];

/** A usage threshold (§10) with its current period's figure. */
export type Threshold = Schemas["ThresholdOut"];

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

export function fetchSection<S extends SectionName>(
  client: Client,
  section: S,
  params: URLSearchParams,
): Promise<SectionData[S]> {
  return request(client, section, params, "application/json").then((response) => response.json());
}

/** The organization's thresholds, each with the figure of its period so far. */
export function fetchThresholds(client: Client): Promise<Threshold[]> {
  return get(client, "thresholds", new URLSearchParams(), "application/json")
    .then((response) => response.json() as Promise<Schemas["ThresholdList"]>)
    .then((answer) => answer.thresholds);
}

export function fetchGroups<S extends SectionName>(
  client: Client,
  section: S,
  params: URLSearchParams,
): Promise<GroupsData[S]> {
  return request(client, `${section}/groups`, params, "application/json").then((response) => response.json());
}

/** A read as CSV: its text and the file name the service gives it. */
export async function fetchCsv(
  client: Client,
  path: string,
  params: URLSearchParams,
): Promise<{ name: string; text: string }> {
  const response = await request(client, path, params, "text/csv");
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `usage-${client.org}-${path.replace("/", "-")}.csv`;
  return { name, text: await response.text() };
}

function request(client: Client, path: string, params: URLSearchParams, accept: string): Promise<Response> {
  return get(client, `usage/${path}`, params, accept);
}

/** A GET of one of the organization's resources (``path`` under /orgs/{org}/). */
async function get(client: Client, path: string, params: URLSearchParams, accept: string): Promise<Response> {
  const query = String(params);
  const url = `${client.baseUrl}/orgs/${encodeURIComponent(client.org)}/${path}${query ? `?${query}` : ""}`;
  let response: Response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${client.token}`, Accept: accept } });
  } catch {
    throw new ApiError(0, "The usage service could not be reached.");
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    throw new ApiError(response.status, problem.detail ?? response.statusText);
  }
  return response;
}

/** The API's base URL: the page's meta tag (empty: the page's own origin). */
export function apiBaseUrl(doc: Document): string {
  const configured = doc.querySelector<HTMLMetaElement>('meta[name="usage-api-base"]')?.content;
  return (configured ?? "").replace(/\/+$/, "");
}
