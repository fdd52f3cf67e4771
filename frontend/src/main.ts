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
import type { Section } from "./sections/section";
import { storage } from "./sections/storage";
import "./style.css";

const VIEWS: { [S in SectionName]: Section<S> } = { llm, compute, storage, platform };
const PAGE_PATH = /^\/organizations\/([^/]+)\/activity\/usage\/?$/;

const app = document.getElementById("app")!;
const orgMatch = PAGE_PATH.exec(location.pathname);

if (!orgMatch) {
  app.replaceChildren(h("p", { class: "error" }, "Open this page at /organizations/<org>/activity/usage."));
} else {
  const org = decodeURIComponent(orgMatch[1]);
  const key = takeKey(location, history, sessionStorage);
  if (key) start(org, key);
  else showSignIn(org, null);
}

function showSignIn(org: string, message: string | null): void {
  document.title = `Sign in · Usage · ${org}`;
  app.replaceChildren(signInForm(sessionStorage, message, (key) => start(org, key)));
}

function start(org: string, key: string): void {
  const client: Client = { baseUrl: apiBaseUrl(document), org, token: key };
  document.title = `Usage · ${org}`;
  let range = rangeFromQuery(location.search);
  let generation = 0; // answers to an older load are dropped
  const listeners = new AbortController(); // this page's window listeners, until it is left
  const data: Partial<SectionData> = {};

  const rangeButtons = PRESETS.map((preset) =>
    h("button", { type: "button", "data-range": preset.value, onclick: () => choose({ kind: "preset", preset: preset.value }) }, preset.label),
  );
  const customButton = h("button", { type: "button", "data-range": "custom", "aria-expanded": "false", onclick: () => toggleCustom() }, "Custom");
  const startInput = h("input", { type: "datetime-local", id: "custom-start", required: true });
  const endInput = h("input", { type: "datetime-local", id: "custom-end", required: true });
  const customError = h("span", { class: "error", role: "alert" });
  const customForm = h("form", { class: "custom-range", hidden: true },
    h("label", { for: "custom-start" }, "Start"), startInput,
    h("label", { for: "custom-end" }, "End"), endInput,
    h("button", { type: "submit" }, "Apply"),
    customError,
  );
  customForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const startAt = localInputToInstant(startInput.value);
    const endAt = localInputToInstant(endInput.value);
    if (!startAt || !endAt || startAt >= endAt) {
      customError.textContent = "Start must be before end.";
      return;
    }
    customError.textContent = "";
    choose({ kind: "custom", start: startAt, end: endAt });
  });
  const bucketText = h("span", { class: "bucket" });
  const asOfText = h("span", { class: "as-of" });
  const header = h("header", { class: "page-header" },
    h("div", { class: "heading" }, h("h1", {}, "Usage"), h("span", { class: "org", title: "Organization" }, org)),
    h("div", { class: "range", role: "group", "aria-label": "Time range" }, ...rangeButtons, customButton),
    customForm,
    h("p", { class: "status" }, bucketText, " · ", asOfText, " · ",
      h("span", {}, "Not live: a snapshot taken when the page loaded. Change the range or reload to refresh.")),
  );
  const frames = SECTIONS.map((name) => ({ name, ...sectionFrame(`section-${name}`, VIEWS[name].title) }));
  const main = h("div", { class: "sections" }, ...frames.map((frame) => frame.root));
  const footer = h("footer", { class: "missing" },
    h("h2", {}, "What's missing"),
    h("ul", {},
      h("li", {}, "Per-run inspection: open a run in the Run Timeline to see its calls and timings."),
      h("li", {}, "Money: this page counts tokens and resources; what they cost is on your provider's invoice."),
    ),
  );
  app.replaceChildren(header, main, footer);

  function toggleCustom(show = customForm.hidden): void {
    customForm.hidden = !show;
    customButton.setAttribute("aria-expanded", String(show));
    if (show) {
      const now = new Date();
      const initial = range.kind === "custom" ? range : { start: new Date(now.getTime() - 7 * 86_400_000).toISOString(), end: now.toISOString() };
      startInput.value = instantToLocalInput(initial.start);
      endInput.value = instantToLocalInput(initial.end);
      startInput.focus();
    }
  }

  function choose(next: Range): void {
    range = next;
    history.pushState(null, "", location.pathname + queryOfRange(range));
    load();
  }

  window.addEventListener("popstate", () => {
    range = rangeFromQuery(location.search);
    load();
  }, { signal: listeners.signal });

  function showRange(): void {
    const current = range.kind === "preset" ? range.preset : "custom";
    for (const button of [...rangeButtons, customButton]) {
      button.setAttribute("aria-pressed", String(button.dataset.range === current));
    }
    if (range.kind === "custom") toggleCustom(true);
  }

  function load(): void {
    generation += 1;
    const mine = generation;
    const params = apiParams(range, new Date());
    showRange();
    bucketText.textContent = "";
    asOfText.textContent = `as of ${instant(params.get("end")!)}`;
    for (const frame of frames) loadSection(frame.name, params, mine);
  }

  function loadSection(name: SectionName, params: URLSearchParams, mine: number): void {
    const frame = frames.find((f) => f.name === name)!;
    delete data[name];
    loading(frame.body, VIEWS[name].cards);
    fetchSection(client, name, params).then(
      (answer) => {
        if (mine !== generation) return;
        (data as Record<string, unknown>)[name] = answer;
        bucketText.textContent = bucketName(answer.window.bucket);
        asOfText.textContent = `as of ${instant(answer.window.as_of)}`;
        draw(name);
      },
      (error: unknown) => {
        if (mine !== generation) return;
        const status = error instanceof ApiError ? error.status : 0;
        if (status === 401) {
          leave();
          showSignIn(org, "That key was not accepted. Sign in with a valid key.");
        } else if (status === 404) {
          leave();
          app.replaceChildren(h("div", { class: "not-found", role: "alert" },
            h("h1", {}, "Organization not found"),
            h("p", {}, `There is no organization “${org}” that this key may read.`),
            h("button", { type: "button", onclick: () => showSignIn(org, null) }, "Use another key")));
        } else {
          const message = error instanceof Error ? error.message : String(error);
          failed(frame.body, message, () => loadSection(name, params, generation));
        }
      },
    );
  }

  /** Stops this page: later answers are dropped, listeners removed, the key forgotten. */
  function leave(): void {
    generation += 1;
    listeners.abort();
    forgetKey(sessionStorage);
  }

  function draw(name: SectionName): void {
    const frame = frames.find((f) => f.name === name)!;
    const answer = data[name];
    if (!answer) return;
    const view = VIEWS[name] as Section<typeof name>;
    filled(frame.body, ...view.render(answer as never, Math.max(frame.body.clientWidth, 280)));
  }

  let lastWidth = main.clientWidth;
  let resizeTimer: number | undefined;
  window.addEventListener("resize", () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      if (main.clientWidth === lastWidth) return;
      lastWidth = main.clientWidth;
      for (const name of SECTIONS) draw(name);
    }, 150);
  }, { signal: listeners.signal });

  load();
}
