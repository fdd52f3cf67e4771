import type { LlmUsage, TokenSums } from "../api";
import { h } from "../dom";
import { COLORS, rankedChart, timeChart } from "../charts";
import { bucketLabel, compact, exact, percent } from "../format";
import { card, cardRow, chartBox, empty, figureCard, grid, halfWidth, partialNote } from "../panel";
import { isEmpty, rankedBars, timeBars } from "../rows";
import type { Section } from "./section";

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
  render(data: LlmUsage, width: number): Node[] {
    const { summary, window } = data;
    const cards = [
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
    ];
    if (isEmpty(summary)) return [cardRow(cards), empty()];
    const label = (start: string) => bucketLabel(start, window.bucket_seconds);
    const tokens = timeBars(
      data.series,
      [
        { key: "Cached input", value: (b) => b.cached_input_tokens, unit: "tokens" },
        { key: "Fresh input", value: (b) => b.fresh_input_tokens, unit: "tokens" },
        { key: "Output", value: (b) => b.output_tokens, unit: "tokens" },
      ],
      window.bucket_seconds,
      "stack",
      label,
    );
    const consumers = rankedBars(
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
    const models = rankedBars(
      data.by_model,
      data.other_models,
      (item) => ({ id: item.model, label: item.model, kind: "model" }),
      (sums) => sums.total_tokens,
      tokenDetails,
    );
    const half = halfWidth(width);
    return [
      cardRow(cards),
      chartBox(
        "Tokens over time",
        timeChart(
          tokens,
          { "Cached input": COLORS.cached, "Fresh input": COLORS.fresh, Output: COLORS.output },
          { width, yLabel: "tokens", ariaLabel: "tokens over time" },
        ),
        partialNote(data.series),
      ),
      grid(
        chartBox(
          "Top consumers",
          rankedChart(
            consumers,
            { agent: COLORS.agent, user: COLORS.user, other: COLORS.other },
            { width: half, xLabel: "total tokens", ariaLabel: "top consumers" },
          ),
        ),
        chartBox(
          "By model",
          rankedChart(
            models,
            { model: COLORS.model, other: COLORS.other },
            { width: half, xLabel: "total tokens", ariaLabel: "by model" },
          ),
        ),
      ),
    ];
  },
};
