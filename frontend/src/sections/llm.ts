import type { LlmUsage, TokenSums } from "../api";
import { COLORS, rankedChart } from "../charts";
import { h } from "../dom";
import { compact, exact, percent } from "../format";
import { card, chartBox, figureCard, grid, halfWidth } from "../panel";
import { rankedBars } from "../rows";
import { type Section, timeline } from "./section";

const tokenDetails = (sums: TokenSums) => [
  `Input: ${exact(sums.input_tokens)} tokens (cached ${exact(sums.cached_tokens)})`,
  `Output: ${exact(sums.output_tokens)} tokens`,
  `Total: ${exact(sums.total_tokens)} tokens`,
  `Requests: ${exact(sums.requests)}`,
];

export const llm: Section<"llm"> = {
  name: "llm",
  title: "LLM",
  cards: 5,
  cardsOf: ({ summary }) => [
    figureCard("Input tokens", summary.input_tokens, "tokens"),
    card(
      "Cached tokens",
      h("span", {}, compact(summary.cached_tokens),
        h("span", { class: "card-of" }, ` of ${compact(summary.input_tokens)}`)),
      `${exact(summary.cached_tokens)} of ${exact(summary.input_tokens)} input tokens`,
      `${percent(summary.cached_tokens, summary.input_tokens)} of input from cache`,
    ),
    figureCard("Output tokens", summary.output_tokens, "tokens"),
    figureCard("Successful requests", summary.successful_requests, "requests"),
    figureCard("Failed requests", summary.failed_requests, "requests"),
  ],
  chartsOf: (data, width) => {
    const half = halfWidth(width);
    return [
      timeline(
        "Tokens over time",
        data,
        [
          { key: "Cached input", value: (b) => b.cached_input_tokens, unit: "tokens", color: "cached" },
          { key: "Fresh input", value: (b) => b.fresh_input_tokens, unit: "tokens", color: "fresh" },
          { key: "Output", value: (b) => b.output_tokens, unit: "tokens", color: "output" },
        ],
        { layout: "stack", width, yLabel: "tokens", ariaLabel: "tokens over time" },
      ),
      grid(
        chartBox(
          "Top consumers",
          rankedChart(
            consumers(data),
            { agent: COLORS.agent, user: COLORS.user, other: COLORS.other },
            { width: half, xLabel: "total tokens", ariaLabel: "top consumers" },
          ),
        ),
        chartBox(
          "By model",
          rankedChart(
            rankedBars(
              data.by_model,
              data.other_models,
              (item) => ({ id: item.model, label: item.model, kind: "model" }),
              (sums) => sums.total_tokens,
              tokenDetails,
            ),
            { model: COLORS.model, other: COLORS.other },
            { width: half, xLabel: "total tokens", ariaLabel: "by model" },
          ),
        ),
      ),
    ];
  },
};

function consumers(data: LlmUsage) {
  return rankedBars(
    data.top_consumers,
    data.other_consumers,
    (item) => ({
      id: `${item.identity.kind}:${item.identity.id}`,
      label: item.identity.name,
      kind: item.identity.kind,
    }),
    (sums) => sums.total_tokens,
    (sums) => ("identity" in sums ? [`${sums.identity.kind} ${sums.identity.id}`] : []).concat(
      tokenDetails(sums),
    ),
  );
}
