import type { StorageUsage } from "../api";
import { COLORS, timeChart } from "../charts";
import { bucketLabel, exact } from "../format";
import { cardRow, chartBox, empty, figureCard, note, partialNote } from "../panel";
import { isEmpty, timeBars } from "../rows";
import { topAgentsChart } from "./agents";
import type { Section } from "./section";

const STORAGE_NOTE = "Allocation-based: the size volumes were provisioned with, not what they held.";

export const storage: Section<"storage"> = {
  name: "storage",
  title: "Storage",
  cards: 1,
  render(data: StorageUsage, width: number): Node[] {
    const { summary, window } = data;
    const cards = cardRow([figureCard("Storage GB-hours", summary.storage_gb_hours, "GB-hours")]);
    if (isEmpty(summary)) return [cards, empty(), note(STORAGE_NOTE)];
    const usage = timeBars(
      data.series,
      [{ key: "Storage GB-hours", value: (b) => b.storage_gb_hours, unit: "GB-hours" }],
      window.bucket_seconds,
      "stack",
      (start) => bucketLabel(start, window.bucket_seconds),
    );
    return [
      cards,
      chartBox(
        "Usage over time",
        timeChart(usage, { "Storage GB-hours": COLORS.storage }, {
          width, yLabel: "GB-hours", ariaLabel: "storage over time",
        }),
        partialNote(data.series),
      ),
      topAgentsChart<{ storage_gb_hours: number }>(
        "Top agents",
        data.top_agents,
        data.other_agents,
        (figures) => figures.storage_gb_hours,
        (figures) => [`Storage: ${exact(figures.storage_gb_hours)} GB-hours`],
        { width, xLabel: "GB-hours" },
      ),
      note(STORAGE_NOTE),
    ];
  },
};
