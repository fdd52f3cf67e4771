// The API key: from the link's #token=… (then kept in sessionStorage, out of the address
// bar and the history), or typed into a sign-in form.

import { h } from "./dom";

const STORAGE_KEY = "usage-api-key";

/** The key from the URL's fragment or the session; the fragment is removed either way. */
export function takeKey(location: Location, history: History, storage: Storage): string | null {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const fromLink = fragment.get("token");
  if (fromLink) {
    storage.setItem(STORAGE_KEY, fromLink);
    history.replaceState(history.state, "", location.pathname + location.search);
  }
  return storage.getItem(STORAGE_KEY);
}

export function forgetKey(storage: Storage): void {
  storage.removeItem(STORAGE_KEY);
}

/** The sign-in form; ``onKey`` gets the key typed in. */
export function signInForm(storage: Storage, message: string | null, onKey: (key: string) => void): HTMLElement {
  const input = h("input", {
    id: "api-key",
    type: "password",
    name: "api-key",
    autocomplete: "off",
    required: true,
    placeholder: "usage_…",
  });
  const form = h("form", { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in to see usage"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("label", { for: "api-key" }, "API key (read scope for this organization, or admin)"),
    input,
    h("button", { type: "submit" }, "Show usage"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    storage.setItem(STORAGE_KEY, key);
    onKey(key);
  });
  return form;
}
