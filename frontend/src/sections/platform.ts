import { COLORS } from "../charts";
import { MEASURES } from "../measures";
import { figureCard } from "../panel";
import { type Section, chartActions, compared, timeline } from "./section";

export const platform: Section<"platform"> = {
  name: "platform",
  title: "Platform",
  cards: 2,
  cardsOf: (data) => {
    const { threads_created: threads, messages_sent: messages } = MEASURES.platform;
    return [
      figureCard(threads.name, data.summary.threads_created, threads.unit, compared(data, (s) => s.threads_created)),
      figureCard(messages.name, data.summary.messages_sent, messages.unit, compared(data, (s) => s.messages_sent)),
    ];
  },
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
        rules: context.rules("activity over time"),
      },
    ),
  ],
};
