// Compute's and storage's "top agents": ranked bars of agents, the others last.

import { COLORS } from "../charts";
import { rankedBars } from "../rows";
import { ranked } from "./section";

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
    span: string;
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
  return ranked(title, bars, { agent: COLORS.agent, other: COLORS.other }, {
    width: options.width,
    xLabel: options.xLabel,
    mark: "top agents",
    span: options.span,
    choose: (bar) => options.choose("agent", bar.id, bar.label),
    nameOf: (bar) => (bar.kind === "other" ? null : `Filter ${options.section} by agent ${bar.label}`),
  });
}
