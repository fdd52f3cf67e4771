// The Usage page: header with the range, the four sections, and what is not here.

import { ApiError, SECTIONS, apiBaseUrl, fetchSection } from "./api";
import type { Client, SectionData, SectionName } from "./api";
import { forgetKey, signInForm, takeKey } from "./auth";
import { h } from "./dom";
import { bucketName, instant } from "./format";
import { failed, filled, loading, sectionFrame } from "./panel";
import { PRESETS, apiParams, instantToLocalInput, localInputToInstant, queryOfRange, rangeFromQuery } from "./range";
import type { Range } from "./range";
import { compute } from "./sections/compute";
import { llm } from "./sections/llm";
import { platform } from "./sections/platform";
import { render, type Section } from "./sections/section";
import { storage } from "./sections/storage";
import "./style.css";

const VIEWS: { [S in SectionName]: Section<S> } = { llm, compute, storage, platform };
const PAGE_PATH = /^\/organizations\/([^/]+)\/activity\/usage\/?$/;

const app = document.getElementById("app")!;

function showSignIn(org: string, message: string | null): void {
  document.title = `Sign in · Usage · ${org}`;
  app.replaceChildren(signInForm(sessionStorage, message, (key) => start(org, key)));
}

/** The range selector: presets, and a custom start and end in the viewer's wall clock. */
interface RangeControls {
  element: HTMLElement;
  form: HTMLFormElement;
  show(range: Range): void;
  toggleCustom(range: Range, show?: boolean): void;
}

function rangeControls(choose: (range: Range) => void, current: () => Range): RangeControls {
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
    const startAt = localInputToInstant(startInput.value);
    const endAt = localInputToInstant(endInput.value);
    error.textContent = !startAt || !endAt || startAt >= endAt ? "Start must be before end." : "";
    if (!error.textContent) choose({ kind: "custom", start: startAt!, end: endAt! });
  });

  function toggleCustom(range: Range, show = form.hidden): void {
    form.hidden = !show;
    customButton.setAttribute("aria-expanded", String(show));
    if (!show) return;
    const now = new Date();
    const initial = range.kind === "custom" ? range : { start: new Date(now.getTime() - 7 * 86_400_000).toISOString(), end: now.toISOString() };
    startInput.value = instantToLocalInput(initial.start);
    endInput.value = instantToLocalInput(initial.end);
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

function pageHeader(org: string, controls: RangeControls, bucketText: HTMLElement, asOfText: HTMLElement): HTMLElement {
  return h("header", { class: "page-header" },
    h("div", { class: "heading" }, h("h1", {}, "Usage"), h("span", { class: "org", title: "Organization" }, org)),
    controls.element,
    controls.form,
    h("p", { class: "status" }, bucketText, " · ", asOfText, " · ",
      h("span", {}, "Not live: a snapshot taken when the page loaded. Change the range or reload to refresh.")),
  );
}

function pageFooter(): HTMLElement {
  return h("footer", { class: "missing" },
    h("h2", {}, "What's missing"),
    h("ul", {},
      h("li", {}, "Per-run inspection: open a run in the Run Timeline to see its calls and timings."),
      h("li", {}, "Money: this page counts tokens and resources; what they cost is on your provider's invoice."),
    ),
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

/** The page for one organization and key: its range, and the sections loaded for it. */
class UsagePage {
  private range = rangeFromQuery(location.search);
  private generation = 0; // answers to an older load are dropped
  private readonly listeners = new AbortController(); // window listeners, until the page is left
  private readonly data: Partial<SectionData> = {};
  private readonly controls = rangeControls((range) => this.choose(range), () => this.range);
  private readonly bucketText = h("span", { class: "bucket" });
  private readonly asOfText = h("span", { class: "as-of" });
  private readonly frames = SECTIONS.map((name) => ({ name, ...sectionFrame(`section-${name}`, VIEWS[name].title) }));

  constructor(
    private readonly org: string,
    private readonly client: Client,
  ) {
    document.title = `Usage · ${org}`;
    const main = h("div", { class: "sections" }, ...this.frames.map((frame) => frame.root));
    app.replaceChildren(pageHeader(org, this.controls, this.bucketText, this.asOfText), main, pageFooter());
    window.addEventListener("popstate", () => {
      this.range = rangeFromQuery(location.search);
      this.load();
    }, { signal: this.listeners.signal });
    redrawOnResize(main, () => SECTIONS.forEach((name) => this.draw(name)), this.listeners.signal);
  }

  load(): void {
    this.generation += 1;
    const params = apiParams(this.range, new Date());
    this.controls.show(this.range);
    this.bucketText.textContent = "";
    this.asOfText.textContent = `as of ${instant(params.get("end")!)}`;
    for (const frame of this.frames) this.loadSection(frame.name, params, this.generation);
  }

  private choose(range: Range): void {
    this.range = range;
    history.pushState(null, "", location.pathname + queryOfRange(range));
    this.load();
  }

  private loadSection(name: SectionName, params: URLSearchParams, mine: number): void {
    const body = this.frame(name).body;
    delete this.data[name];
    loading(body, VIEWS[name].cards);
    fetchSection(this.client, name, params).then(
      (answer) => {
        if (mine !== this.generation) return;
        (this.data as Record<string, unknown>)[name] = answer;
        this.bucketText.textContent = bucketName(answer.window.bucket);
        this.asOfText.textContent = `as of ${instant(answer.window.as_of)}`;
        this.draw(name);
      },
      (error: unknown) => {
        if (mine !== this.generation) return;
        this.refused(error, body, () => this.loadSection(name, params, this.generation));
      },
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
    this.generation += 1;
    this.listeners.abort();
    forgetKey(sessionStorage);
  }

  private draw(name: SectionName): void {
    const answer = this.data[name];
    if (!answer) return;
    const body = this.frame(name).body;
    const view = VIEWS[name] as Section<typeof name>;
    filled(body, ...render(view, answer as never, Math.max(body.clientWidth, 280)));
  }

  private frame(name: SectionName) {
    return this.frames.find((frame) => frame.name === name)!;
  }
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
