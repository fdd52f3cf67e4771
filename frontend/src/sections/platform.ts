import { COLORS } from "../charts";
import { figureCard } from "../panel";
import { type Section, chartActions, compared, timeline } from "./section";

export const platform: Section<"platform"> = {
  name: "platform",
  title: "Platform",
  cards: 2,
  cardsOf: (data) => [
    figureCard("Threads created", data.summary.threads_created, "threads", compared(data, (s) => s.threads_created)),
    figureCard("Messages sent", data.summary.messages_sent, "messages", compared(data, (s) => s.messages_sent)),
  ],
  chartsOf: (data, context) => [
    timeline(
      "Activity over time",
      data,
      [
        { key: "Threads created", value: (b) => b.threads_created, unit: "threads", color: COLORS.threads },
        { key: "Messages sent", value: (b) => b.messages_sent, unit: "messages", color: COLORS.messages },
      ],
      {
        layout: "beside", width: context.width, yLabel: "count", mark: "activity over time",
        zone: context.zone, actions: chartActions("platform activity", context, []),
      },
    ),
  ],
};
