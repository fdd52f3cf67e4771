// The Usage page: header with the range, the four sections, and what is not here.

import { ApiError, SECTIONS, apiBaseUrl, fetchCsv, fetchGroups, fetchSection, fetchThresholds } from "./api";
import type { Client, GroupsData, SectionData, SectionName, Threshold } from "./api";
import { forgetKey, signInForm, takeKey } from "./auth";
import { h } from "./dom";
import { bucketName, instant } from "./format";
import { failed, filled, limitList, loading, sectionFrame } from "./panel";
import { spanText } from "./reading";
import { PRESETS, apiParams, instantToZonedInput, zonedInputToInstant } from "./range";
import type { Range } from "./range";
import { FILTERS, type View, filterParams, queryOfView, toggleFilter, viewFromQuery, withSplit, zoneOf } from "./view";
import { compute } from "./sections/compute";
import { llm } from "./sections/llm";
import { platform } from "./sections/platform";
import { type Context, render, type Section } from "./sections/section";
import { storage } from "./sections/storage";
import { limitLine, limitRules } from "./thresholds";
import "./style.css";

const VIEWS: { [S in SectionName]: Section<S> } = { llm, compute, storage, platform };
const PAGE_PATH = /^\/organizations\/([^/]+)\/activity\/usage\/?$/;

const app = document.getElementById("app")!;

function showSignIn(org: string, message: string | null): void {
  document.title = `Sign in · Usage · ${org}`;
  app.replaceChildren(signInForm(sessionStorage, message, (key) => start(org, key)));
}

/** The range selector: presets, and a custom start and end on the shown zone's wall clock. */
interface RangeControls {
  element: HTMLElement;
  form: HTMLFormElement;
  show(range: Range): void;
  toggleCustom(range: Range, show?: boolean): void;
}

function rangeControls(choose: (range: Range) => void, current: () => Range, zone: () => string): RangeControls {
  const presets = PRESETS.map((preset) =>
    h("button", { type: "button", "data-range": preset.value, onclick: () => choose({ kind: "preset", preset: preset.value }) }, preset.label),
  );
  const customButton = h("button", { type: "button", "data-range": "custom", "aria-expanded": "false", onclick: () => toggleCustom(current()) }, "Custom");
  const startInput = h("input", { type: "datetime-local", id: "custom-start", required: true });
  const endInput = h("input", { type: "datetime-local", id: "custom-end", required: true });
  const error = h("span", { class: "error", role: "alert" });
  const form = h("form", { class: "custom-range", hidden: true },
    h("label", { for: "custom-start" }, "Start"), startInput,
    h("label", { for: "custom-end" }, "End"), endInput,
    h("button", { type: "submit" }, "Apply"),
    error,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const startAt = zonedInputToInstant(startInput.value, zone());
    const endAt = zonedInputToInstant(endInput.value, zone());
    error.textContent = !startAt || !endAt || startAt >= endAt ? "Start must be before end." : "";
    if (!error.textContent) choose({ kind: "custom", start: startAt!, end: endAt! });
  });

  function toggleCustom(range: Range, show = form.hidden): void {
    form.hidden = !show;
    customButton.setAttribute("aria-expanded", String(show));
    if (!show) return;
    const now = new Date();
    const initial = range.kind === "custom" ? range : { start: new Date(now.getTime() - 7 * 86_400_000).toISOString(), end: now.toISOString() };
    startInput.value = instantToZonedInput(initial.start, zone());
    endInput.value = instantToZonedInput(initial.end, zone());
    startInput.focus();
  }

  function show(range: Range): void {
    const pressed = range.kind === "preset" ? range.preset : "custom";
    for (const button of [...presets, customButton]) {
      button.setAttribute("aria-pressed", String(button.dataset.range === pressed));
    }
    if (range.kind === "custom") toggleCustom(range, true);
  }

  const element = h("div", { class: "range", role: "group", "aria-label": "Time range" }, ...presets, customButton);
  return { element, form, show, toggleCustom };
}

function pageHeader(org: string, controls: RangeControls, bucketText: HTMLElement, asOfText: HTMLElement, zoneText: HTMLElement): HTMLElement {
  return h("header", { class: "page-header" },
    h("div", { class: "heading" }, h("h1", {}, "Usage"), h("span", { class: "org", title: "Organization" }, org)),
    controls.element,
    controls.form,
    h("p", { class: "status" }, bucketText, " · ", zoneText, " · ", asOfText, " · ",
      h("span", {}, "Not live: a snapshot taken when the page loaded. Change the range or reload to refresh.")),
  );
}

/** What is not here, and where the API this page reads is described (served beside it). */
function pageFooter(apiBase: string): HTMLElement {
  return h("footer", { class: "missing" },
    h("h2", {}, "What's missing"),
    h("ul", {},
      h("li", {}, "Per-run inspection: open a run in the Run Timeline to see its calls and timings."),
      h("li", {}, "Money: this page counts tokens and resources; what they cost is on your provider's invoice."),
    ),
    h("p", {}, "Everything this page shows, and more, is in the usage API: see its ",
      h("a", { href: `${apiBase}/schema` }, "API reference"), "."),
  );
}

function notFound(org: string): HTMLElement {
  return h("div", { class: "not-found", role: "alert" },
    h("h1", {}, "Organization not found"),
    h("p", {}, `There is no organization “${org}” that this key may read.`),
    h("button", { type: "button", onclick: () => showSignIn(org, null) }, "Use another key"));
}

function start(org: string, key: string): void {
  new UsagePage(org, { baseUrl: apiBaseUrl(document), org, token: key }).load();
}

/** How many groups a split chart stacks before "Other". */
const SPLIT_TOP = "8";
const FILTER_NAMES: Record<string, string> = { model: "Model", identity: "Consumer", agent: "Agent" };

/** The page for one organization and key: its view (range, zone, filters, splits), and the
 * sections loaded for it. */
class UsagePage {
  private view: View = viewFromQuery(location.search);
  private window = new URLSearchParams(); // the current load's window and zone: every GET's
  private readonly versions = Object.fromEntries(SECTIONS.map((name) => [name, 0])) as Record<SectionName, number>;
  private readonly data: Partial<SectionData> = {};
  private readonly groups: { [S in SectionName]?: GroupsData[S] | "loading" | Error } = {};
  private thresholds: Threshold[] = []; // the organization's, as of the current load
  private thresholdsVersion = 0;
  private readonly labels = new Map<string, string>(); // "llm.model=gpt-5" → the name on its chip
  private focusChip: string | null = null; // the chip to focus once its section is drawn
  private readonly listeners = new AbortController(); // window listeners, until the page is left
  private readonly controls = rangeControls((range) => this.chooseRange(range), () => this.view.range, () => zoneOf(this.view));
  private readonly bucketText = h("span", { class: "bucket" });
  private readonly zoneText = h("span", { class: "zone" });
  private readonly asOfText = h("span", { class: "as-of" });
  private readonly frames = SECTIONS.map((name) => ({ name, ...sectionFrame(`section-${name}`, VIEWS[name].title) }));

  constructor(
    private readonly org: string,
    private readonly client: Client,
  ) {
    document.title = `Usage · ${org}`;
    const main = h("div", { class: "sections" }, ...this.frames.map((frame) => frame.root));
    app.replaceChildren(pageHeader(org, this.controls, this.bucketText, this.asOfText, this.zoneText), main, pageFooter(client.baseUrl));
    window.addEventListener("popstate", () => {
      this.view = viewFromQuery(location.search);
      this.load();
    }, { signal: this.listeners.signal });
    redrawOnResize(main, () => SECTIONS.forEach((name) => this.draw(name)), this.listeners.signal);
  }

  /** Every section (and each split asked for) fetched again, for one ``end``. */
  load(): void {
    const zone = zoneOf(this.view);
    this.window = apiParams(this.view.range, new Date());
    this.window.set("tz", zone);
    this.controls.show(this.view.range);
    this.bucketText.textContent = "";
    this.zoneText.textContent = `Times in ${zone}`;
    this.asOfText.textContent = `as of ${instant(this.window.get("end")!, zone)}`;
    for (const name of SECTIONS) this.loadSection(name);
    this.loadThresholds();
  }

  /** The organization's thresholds, beside the sections (which do not wait for them): each
   * section drawn so far is drawn again with them. A key that may not read them (403), or
   * any failure, leaves the page without them, and says nothing. */
  private loadThresholds(): void {
    const mine = ++this.thresholdsVersion;
    fetchThresholds(this.client).then(
      (thresholds) => this.showThresholds(mine, thresholds),
      () => this.showThresholds(mine, []),
    );
  }

  private showThresholds(mine: number, thresholds: Threshold[]): void {
    if (mine !== this.thresholdsVersion) return;
    const unchanged = thresholds.length === 0 && this.thresholds.length === 0;
    this.thresholds = thresholds;
    if (!unchanged) for (const name of SECTIONS) this.draw(name);
  }

  private chooseRange(range: Range): void {
    this.show({ ...this.view, range });
    this.load();
  }

  /** A drill-down, or a chip removed: that section alone is fetched again. */
  private chooseFilter(name: SectionName, filter: string, value: string, label: string): void {
    const key = `${name}.${filter}=${value}`;
    this.labels.set(key, label);
    const view = toggleFilter(this.view, name, filter, value);
    this.focusChip = view.filters[name][filter]?.includes(value) ? key : null;
    this.show(view);
    this.loadSection(name);
  }

  private chooseSplit(name: SectionName, split: string | null): void {
    this.show(withSplit(this.view, name, split));
    if (split) this.loadGroups(name, this.versions[name]);
    else this.draw(name);
  }

  private show(view: View): void {
    this.view = view;
    history.pushState(null, "", location.pathname + queryOfView(view));
  }

  /** The section's query: the window, its filters, and more (compare, by, top). */
  private paramsOf(name: SectionName, more: Record<string, string>): URLSearchParams {
    const params = new URLSearchParams(this.window);
    for (const [filter, value] of filterParams(this.view.filters[name])) params.append(filter, value);
    for (const [param, value] of Object.entries(more)) params.set(param, value);
    return params;
  }

  private groupsParams(name: SectionName): URLSearchParams {
    return this.paramsOf(name, { by: this.view.splits[name]!, top: SPLIT_TOP });
  }

  private loadSection(name: SectionName): void {
    const mine = ++this.versions[name];
    const body = this.frame(name).body;
    delete this.data[name];
    delete this.groups[name];
    loading(body, VIEWS[name].cards);
    const retry = () => this.loadSection(name);
    fetchSection(this.client, name, this.paramsOf(name, { compare: "previous" })).then(
      (answer) => {
        if (mine !== this.versions[name]) return;
        // Marks for the browser tests' render timing: from an answer to its section drawn.
        performance.mark(`usage:answered:${name}`);
        (this.data as Record<string, unknown>)[name] = answer;
        this.bucketText.textContent = bucketName(answer.window.bucket);
        this.draw(name);
        performance.mark(`usage:drawn:${name}`);
      },
      (error: unknown) => {
        if (mine === this.versions[name]) this.refused(error, body, retry);
      },
    );
    if (this.view.splits[name]) this.loadGroups(name, mine);
  }

  private loadGroups(name: SectionName, mine: number): void {
    (this.groups as Record<string, unknown>)[name] = "loading";
    this.draw(name);
    fetchGroups(this.client, name, this.groupsParams(name)).then(
      (answer) => {
        if (mine !== this.versions[name]) return;
        (this.groups as Record<string, unknown>)[name] = answer;
        this.draw(name);
      },
      (error: unknown) => {
        if (mine !== this.versions[name]) return;
        (this.groups as Record<string, unknown>)[name] = error instanceof Error ? error : new Error(String(error));
        this.draw(name);
      },
    );
  }

  /** The chart over time as the service's CSV (series, or groups when split), saved. */
  private download(name: SectionName): void {
    const split = this.view.splits[name];
    const [path, params] = split ? [`${name}/groups`, this.groupsParams(name)] : [name, this.paramsOf(name, {})];
    fetchCsv(this.client, path, params).then(
      ({ name: file, text }) => {
        const link = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: file });
        link.click();
        URL.revokeObjectURL(link.href);
      },
      (error: unknown) => window.alert(`The CSV could not be downloaded: ${error instanceof Error ? error.message : String(error)}`),
    );
  }

  private refused(error: unknown, body: HTMLElement, retry: () => void): void {
    const status = error instanceof ApiError ? error.status : 0;
    if (status === 401 || status === 404) {
      this.leave();
      if (status === 401) showSignIn(this.org, "That key was not accepted. Sign in with a valid key.");
      else app.replaceChildren(notFound(this.org));
    } else {
      failed(body, error instanceof Error ? error.message : String(error), retry);
    }
  }

  /** Stops this page: later answers are dropped, listeners removed, the key forgotten. */
  private leave(): void {
    for (const name of SECTIONS) this.versions[name] += 1;
    this.thresholdsVersion += 1;
    this.listeners.abort();
    forgetKey(sessionStorage);
  }

  private draw(name: SectionName): void {
    const answer = this.data[name];
    if (!answer) return;
    const body = this.frame(name).body;
    const view = VIEWS[name] as Section<typeof name>;
    const context: Context<typeof name> = {
      width: Math.max(body.clientWidth, 280),
      zone: zoneOf(this.view),
      span: spanText(answer.window, zoneOf(this.view)),
      filters: this.view.filters[name],
      split: this.view.splits[name],
      groups: (this.groups[name] ?? null) as Context<typeof name>["groups"],
      choose: (filter, value, label) => this.chooseFilter(name, filter, value, label),
      splitBy: (split) => this.chooseSplit(name, split),
      download: () => this.download(name),
      rules: (chart) => limitRules(this.thresholds, name, chart, {
        bucket: answer.window.bucket,
        zone: answer.window.tz,
        filters: this.view.filters[name],
        split: this.view.splits[name],
      }),
    };
    filled(body, ...render(view, answer as never, context, this.chips(name), this.limits(name)));
    if (this.focusChip?.startsWith(`${name}.`)) {
      body.querySelector<HTMLElement>(`[data-filter="${CSS.escape(this.focusChip)}"]`)?.focus();
      this.focusChip = null;
    }
  }

  /** The section's thresholds, a line each; their filters' values named as its chips are. */
  private limits(name: SectionName): HTMLElement | null {
    const nameOf = (filter: string, value: string) =>
      this.labels.get(`${name}.${filter}=${value}`) ?? nameIn(this.data[name], filter, value) ?? value;
    const lines = this.thresholds
      .filter((threshold) => threshold.section === name)
      .map((threshold) => limitLine(threshold, zoneOf(this.view), nameOf));
    return limitList(lines);
  }

  /** The section's filters as chips (in the order of its filters), each removing its filter. */
  private chips(name: SectionName): HTMLElement | null {
    const chosen = this.view.filters[name];
    const chips = FILTERS[name].flatMap((filter) =>
      (chosen[filter] ?? []).map((value) => {
        const key = `${name}.${filter}=${value}`;
        const label = this.labels.get(key) ?? nameIn(this.data[name], filter, value) ?? value;
        return h("button", {
          type: "button",
          class: "chip",
          "data-filter": key,
          "aria-label": `Remove filter ${FILTER_NAMES[filter].toLowerCase()} ${label}`,
          onclick: () => this.chooseFilter(name, filter, value, label),
        }, `${FILTER_NAMES[filter]}: ${label}`, h("span", { "aria-hidden": "true" }, " ✕"));
      }),
    );
    return chips.length ? h("div", { class: "chips", role: "group", "aria-label": `${VIEWS[name].title} filters` }, ...chips) : null;
  }

  private frame(name: SectionName) {
    return this.frames.find((frame) => frame.name === name)!;
  }
}

/** A filter value's name in a section's answer (after a reload, where no bar was chosen). */
function nameIn(answer: SectionData[SectionName] | undefined, filter: string, value: string): string | undefined {
  if (!answer) return undefined;
  if (filter === "identity" && "top_consumers" in answer) {
    return answer.top_consumers.find((item) => `${item.identity.kind}:${item.identity.id}` === value)?.identity.name;
  }
  if (filter === "agent" && "top_agents" in answer) {
    return answer.top_agents.find((item) => item.agent.id === value)?.agent.name;
  }
  return undefined;
}

/** Charts are drawn for a width: draw again when the sections' width changes. */
function redrawOnResize(main: HTMLElement, redraw: () => void, signal: AbortSignal): void {
  let lastWidth = main.clientWidth;
  let timer: number | undefined;
  window.addEventListener("resize", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      if (main.clientWidth === lastWidth) return;
      lastWidth = main.clientWidth;
      redraw();
    }, 150);
  }, { signal });
}

// Last: the page starts once every declaration above is made (classes are not hoisted).
const orgMatch = PAGE_PATH.exec(location.pathname);

if (!orgMatch) {
  app.replaceChildren(h("p", { class: "error" }, "Open this page at /organizations/<org>/activity/usage."));
} else {
  const org = decodeURIComponent(orgMatch[1]);
  const key = takeKey(location, history, sessionStorage);
  if (key) start(org, key);
  else showSignIn(org, null);
}
