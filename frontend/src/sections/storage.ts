import { exact } from "../format";
import { figureCard } from "../panel";
import { topAgentsChart } from "./agents";
import { type Section, timeline } from "./section";

export const storage: Section<"storage"> = {
  name: "storage",
  title: "Storage",
  cards: 1,
  cardsOf: ({ summary }) => [figureCard("Storage GB-hours", summary.storage_gb_hours, "GB-hours")],
  chartsOf: (data, width) => [
    timeline(
      "Usage over time",
      data,
      [{ key: "Storage GB-hours", value: (b) => b.storage_gb_hours, unit: "GB-hours", color: "storage" }],
      { layout: "stack", width, yLabel: "GB-hours", ariaLabel: "storage over time" },
    ),
    topAgentsChart<{ storage_gb_hours: number }>(
      "Top agents",
      data.top_agents,
      data.other_agents,
      (figures) => figures.storage_gb_hours,
      (figures) => [`Storage: ${exact(figures.storage_gb_hours)} GB-hours`],
      { width, xLabel: "GB-hours" },
    ),
  ],
  note: "Allocation-based: the size volumes were provisioned with, not what they held.",
};
