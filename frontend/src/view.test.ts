import { describe, expect, it } from "vitest";

import { emptyView, filterParams, modernName, queryOfView, toggleFilter, viewFromQuery, withSplit } from "./view";

describe("the view in the URL", () => {
  it("reads filters, splits and the zone beside the range", () => {
    const view = viewFromQuery(
      "?range=7d&tz=Asia/Kolkata&llm.model=gpt-5&llm.model=gpt-4o&llm.identity=agent:agt-1&compute.agent=agt-7&llm.by=model",
    );
    expect(view.range).toEqual({ kind: "preset", preset: "7d" });
    expect(view.zone).toBe("Asia/Kolkata");
    expect(view.filters.llm).toEqual({ model: ["gpt-5", "gpt-4o"], identity: ["agent:agt-1"] });
    expect(view.filters.compute).toEqual({ agent: ["agt-7"] });
    expect(view.filters.storage).toEqual({});
    expect(view.splits).toEqual({ llm: "model", compute: null, storage: null, platform: null });
  });

  it("leaves out what it cannot read", () => {
    const view = viewFromQuery("?tz=Mars/Olympus&llm.agent=x&compute.model=y&llm.by=agent&platform.by=identity&llm.model=");
    expect(view).toEqual(emptyView());
  });

  it("round-trips", () => {
    let view = viewFromQuery("?range=30d");
    view = toggleFilter(view, "llm", "model", "gpt-5");
    view = toggleFilter(view, "llm", "identity", "user:usr 1&2");
    view = toggleFilter(view, "storage", "agent", "agt-7");
    view = withSplit(view, "compute", "agent");
    view = { ...view, zone: "Pacific/Chatham" };
    expect(viewFromQuery(queryOfView(view))).toEqual(view);
  });

  it("toggles a filter value on and off", () => {
    const once = toggleFilter(emptyView(), "llm", "model", "gpt-5");
    expect(once.filters.llm).toEqual({ model: ["gpt-5"] });
    expect(toggleFilter(once, "llm", "model", "gpt-5").filters.llm).toEqual({});
    expect(filterParams(toggleFilter(once, "llm", "model", "b").filters.llm)).toEqual([
      ["model", "gpt-5"],
      ["model", "b"],
    ]);
  });
});

describe("zone names", () => {
  it("reads renamed zones by their current names", () => {
    expect(modernName("Asia/Calcutta")).toBe("Asia/Kolkata");
    expect(modernName("Europe/Kiev")).toBe("Europe/Kyiv");
    expect(modernName("America/New_York")).toBe("America/New_York");
  });
});
