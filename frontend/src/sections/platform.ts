import { figureCard } from "../panel";
import { type Section, timeline } from "./section";

export const platform: Section<"platform"> = {
  name: "platform",
  title: "Platform",
  cards: 2,
  cardsOf: ({ summary }) => [
    figureCard("Threads created", summary.threads_created, "threads"),
    figureCard("Messages sent", summary.messages_sent, "messages"),
  ],
  chartsOf: (data, width) => [
    timeline(
      "Activity over time",
      data,
      [
        { key: "Threads created", value: (b) => b.threads_created, unit: "threads", color: "threads" },
        { key: "Messages sent", value: (b) => b.messages_sent, unit: "messages", color: "messages" },
      ],
      { layout: "beside", width, yLabel: "count", ariaLabel: "activity over time" },
    ),
  ],
};
