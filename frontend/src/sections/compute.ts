import type { ComputeFigures, ComputeUsage } from "../api";
import { COLORS, timeChart } from "../charts";
import { bucketLabel, exact } from "../format";
import { cardRow, chartBox, empty, figureCard, note, partialNote } from "../panel";
import { isEmpty, timeBars } from "../rows";
import { topAgentsChart } from "./agents";
import type { Section } from "./section";

const ALLOCATION_NOTE = "Allocation-based: what workloads reserved, not what they used.";

const details = (figures: ComputeFigures) => [
  `CPU: ${exact(figures.cpu_core_hours)} core-hours`,
  `RAM: ${exact(figures.ram_gb_hours)} GB-hours`,
];

export const compute: Section<"compute"> = {
  name: "compute",
  title: "Compute",
  cards: 2,
  render(data: ComputeUsage, width: number): Node[] {
    const { summary, window } = data;
    const cards = cardRow([
      figureCard("CPU core-hours", summary.cpu_core_hours, "core-hours"),
      figureCard("RAM GB-hours", summary.ram_gb_hours, "GB-hours"),
    ]);
    if (isEmpty(summary)) return [cards, empty(), note(ALLOCATION_NOTE)];
    const label = (start: string) => bucketLabel(start, window.bucket_seconds);
    const usage = timeBars(
      data.series,
      [
        { key: "CPU core-hours", value: (b) => b.cpu_core_hours, unit: "core-hours" },
        { key: "RAM GB-hours", value: (b) => b.ram_gb_hours, unit: "GB-hours" },
      ],
      window.bucket_seconds,
      "stack",
      label,
    );
    // Two charts, one series each (their own y axes on the shared time axis): each bar fills
    // its bucket; every bar's title still holds both figures of its bucket.
    const [cpu, ram] = ["CPU core-hours", "RAM GB-hours"].map((key) =>
      usage.filter((bar) => bar.key === key),
    );
    return [
      cards,
      chartBox(
        "Usage over time",
        timeChart(cpu, { "CPU core-hours": COLORS.cpu }, {
          width, height: 160, yLabel: "CPU core-hours", ariaLabel: "cpu over time",
        }),
      ),
      chartBox(
        "",
        timeChart(ram, { "RAM GB-hours": COLORS.ram }, {
          width, height: 160, yLabel: "RAM GB-hours", ariaLabel: "ram over time",
        }),
        partialNote(data.series),
      ),
      topAgentsChart<ComputeFigures>(
        "Top agents by CPU core-hours",
        data.top_agents,
        data.other_agents,
        (figures) => figures.cpu_core_hours,
        details,
        { width, xLabel: "CPU core-hours" },
      ),
      note(ALLOCATION_NOTE),
    ];
  },
};
