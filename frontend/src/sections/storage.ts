import { COLORS } from "../charts";
import { exact } from "../format";
import { MEASURES } from "../measures";
import { figureCard } from "../panel";
import { topAgentsChart } from "./agents";
import { type Section, chartActions, compared, groupTimeline, splitChart, timeline } from "./section";

export const storage: Section<"storage"> = {
  name: "storage",
  title: "Storage",
  cards: 1,
  cardsOf: (data) => [
    figureCard(MEASURES.storage.storage_gb_hours.name, data.summary.storage_gb_hours, MEASURES.storage.storage_gb_hours.unit, compared(data, (s) => s.storage_gb_hours)),
  ],
  chartsOf: (data, context) => {
    const title = "Usage over time";
    const actions = chartActions("storage", context, [
      [null, "Total"],
      ["agent", "Agent"],
    ]);
    const mark = "storage over time";
    const options = { layout: "stack" as const, width: context.width, yLabel: "GB-hours", mark, zone: context.zone, actions, rules: context.rules(mark) };
    return [
      context.split
        ? splitChart(title, context, actions, (groups) => groupTimeline(title, groups, (b) => b.storage_gb_hours, "GB-hours", options))
        : timeline(title, data, [{ key: "Storage GB-hours", value: (b) => b.storage_gb_hours, unit: "GB-hours", color: COLORS.storage }], options),
      topAgentsChart<{ storage_gb_hours: number }>(
        "Top agents",
        data.top_agents,
        data.other_agents,
        (figures) => figures.storage_gb_hours,
        (figures) => [`Storage: ${exact(figures.storage_gb_hours)} GB-hours`],
        { width: context.width, xLabel: "GB-hours", section: "Storage", span: context.span, choose: context.choose },
      ),
    ];
  },
  note: "Allocation-based: the size volumes were provisioned with, not what they held.",
};
