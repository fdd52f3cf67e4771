// Compute's and storage's "top agents": ranked bars of agents, the others last.

import { COLORS, rankedChart } from "../charts";
import { chartBox } from "../panel";
import { rankedBars } from "../rows";

interface AgentItem {
  agent: { id: string; name: string };
}

export function topAgentsChart<F extends object>(
  title: string,
  items: (F & AgentItem)[],
  other: (F & { count: number }) | null,
  value: (figures: F) => number,
  details: (figures: F) => string[],
  options: {
    width: number;
    xLabel: string;
    section: string; // its title, in each bar's accessible name
    choose: (filter: string, value: string, label: string) => void;
  },
): HTMLElement {
  const bars = rankedBars(
    items,
    other,
    (item) => ({ id: item.agent.id, label: item.agent.name, kind: "agent" }),
    value,
    (figures) =>
      ("agent" in figures ? [`agent ${(figures as AgentItem).agent.id}`] : []).concat(
        details(figures),
      ),
  );
  return chartBox(
    title,
    rankedChart(bars, { agent: COLORS.agent, other: COLORS.other }, {
      width: options.width,
      xLabel: options.xLabel,
      ariaLabel: "top agents",
      choose: (bar) => options.choose("agent", bar.id, bar.label),
      nameOf: (bar) => (bar.kind === "other" ? null : `Filter ${options.section} by agent ${bar.label}`),
    }),
  );
}
