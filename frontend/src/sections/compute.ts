import type { ComputeFigures } from "../api";
import { COLORS } from "../charts";
import { exact } from "../format";
import { MEASURES } from "../measures";
import { figureCard } from "../panel";
import { topAgentsChart } from "./agents";
import { type Section, chartActions, compared, groupTimeline, splitChart, timeline } from "./section";

const details = (figures: ComputeFigures) => [
  `CPU: ${exact(figures.cpu_core_hours)} core-hours`,
  `RAM: ${exact(figures.ram_gb_hours)} GB-hours`,
];

export const compute: Section<"compute"> = {
  name: "compute",
  title: "Compute",
  cards: 2,
  cardsOf: (data) => {
    const { cpu_core_hours: cpu, ram_gb_hours: ram } = MEASURES.compute;
    return [
      figureCard(cpu.name, data.summary.cpu_core_hours, cpu.unit, compared(data, (s) => s.cpu_core_hours)),
      figureCard(ram.name, data.summary.ram_gb_hours, ram.unit, compared(data, (s) => s.ram_gb_hours)),
    ];
  },
  // CPU and RAM in two charts on the same time axis, each with its own y axis; each bar
  // fills its bucket. Split by agent, each chart stacks the agents.
  chartsOf: (data, context) => {
    const title = "Usage over time";
    const actions = chartActions("compute", context, [
      [null, "Resource"],
      ["agent", "Agent"],
    ]);
    const cpu = { name: "CPU core-hours over time", layout: "stack" as const, width: context.width, height: 160, yLabel: "CPU core-hours", mark: "cpu over time", zone: context.zone, withNote: false, rules: context.rules("cpu over time") };
    const ram = { name: "RAM GB-hours over time", layout: "stack" as const, width: context.width, height: 160, yLabel: "RAM GB-hours", mark: "ram over time", zone: context.zone, rules: context.rules("ram over time") };
    const overTime = context.split
      ? [
          splitChart(title, context, actions, (groups) => groupTimeline(title, groups, (b) => b.cpu_core_hours, "core-hours", { ...cpu, actions })),
          splitChart("", context, [], (groups) => groupTimeline("", groups, (b) => b.ram_gb_hours, "GB-hours", ram)),
        ]
      : [
          timeline(title, data, [{ key: "CPU core-hours", value: (b) => b.cpu_core_hours, unit: "core-hours", color: COLORS.cpu }], { ...cpu, actions }),
          timeline("", data, [{ key: "RAM GB-hours", value: (b) => b.ram_gb_hours, unit: "GB-hours", color: COLORS.ram }], ram),
        ];
    return [
      ...overTime,
      topAgentsChart<ComputeFigures>(
        "Top agents by CPU core-hours",
        data.top_agents,
        data.other_agents,
        (figures) => figures.cpu_core_hours,
        details,
        { width: context.width, xLabel: "CPU core-hours", section: "Compute", span: context.span, choose: context.choose },
      ),
    ];
  },
  note: "Allocation-based: what workloads reserved, not what they used.",
};
