import type { ComputeFigures } from "../api";
import { exact } from "../format";
import { figureCard } from "../panel";
import { topAgentsChart } from "./agents";
import { type Section, timeline } from "./section";

const details = (figures: ComputeFigures) => [
  `CPU: ${exact(figures.cpu_core_hours)} core-hours`,
  `RAM: ${exact(figures.ram_gb_hours)} GB-hours`,
];

export const compute: Section<"compute"> = {
  name: "compute",
  title: "Compute",
  cards: 2,
  cardsOf: ({ summary }) => [
    figureCard("CPU core-hours", summary.cpu_core_hours, "core-hours"),
    figureCard("RAM GB-hours", summary.ram_gb_hours, "GB-hours"),
  ],
  // CPU and RAM in two charts on the same time axis, each with its own y axis; each bar
  // fills its bucket.
  chartsOf: (data, width) => [
    timeline(
      "Usage over time",
      data,
      [{ key: "CPU core-hours", value: (b) => b.cpu_core_hours, unit: "core-hours", color: "cpu" }],
      {
        layout: "stack", width, height: 160, yLabel: "CPU core-hours", ariaLabel: "cpu over time",
        withNote: false,
      },
    ),
    timeline(
      "",
      data,
      [{ key: "RAM GB-hours", value: (b) => b.ram_gb_hours, unit: "GB-hours", color: "ram" }],
      { layout: "stack", width, height: 160, yLabel: "RAM GB-hours", ariaLabel: "ram over time" },
    ),
    topAgentsChart<ComputeFigures>(
      "Top agents by CPU core-hours",
      data.top_agents,
      data.other_agents,
      (figures) => figures.cpu_core_hours,
      details,
      { width, xLabel: "CPU core-hours" },
    ),
  ],
  note: "Allocation-based: what workloads reserved, not what they used.",
};
