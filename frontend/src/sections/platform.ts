import type { PlatformUsage } from "../api";
import { COLORS, timeChart } from "../charts";
import { bucketLabel } from "../format";
import { cardRow, chartBox, empty, figureCard, partialNote } from "../panel";
import { isEmpty, timeBars } from "../rows";
import type { Section } from "./section";

export const platform: Section<"platform"> = {
  name: "platform",
  title: "Platform",
  cards: 2,
  render(data: PlatformUsage, width: number): Node[] {
    const { summary, window } = data;
    const cards = cardRow([
      figureCard("Threads created", summary.threads_created, "threads"),
      figureCard("Messages sent", summary.messages_sent, "messages"),
    ]);
    if (isEmpty(summary)) return [cards, empty()];
    const activity = timeBars(
      data.series,
      [
        { key: "Threads created", value: (b) => b.threads_created, unit: "threads" },
        { key: "Messages sent", value: (b) => b.messages_sent, unit: "messages" },
      ],
      window.bucket_seconds,
      "beside",
      (start) => bucketLabel(start, window.bucket_seconds),
    );
    return [
      cards,
      chartBox(
        "Activity over time",
        timeChart(
          activity,
          { "Threads created": COLORS.threads, "Messages sent": COLORS.messages },
          { width, yLabel: "count", ariaLabel: "activity over time" },
        ),
        partialNote(data.series),
      ),
    ];
  },
};
