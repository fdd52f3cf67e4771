import type { LlmUsage, TokenSums } from "../api";
import { COLORS } from "../charts";
import { h } from "../dom";
import { compact, exact, percent } from "../format";
import { MEASURES } from "../measures";
import { card, figureCard, grid, halfWidth } from "../panel";
import { rankedBars } from "../rows";
import { type Context, type Section, chartActions, compared, groupTimeline, ranked, splitChart, timeline } from "./section";

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
  cardsOf: (data) => {
    const { summary } = data;
    const named = MEASURES.llm;
    return [
      figureCard(named.input_tokens.name, summary.input_tokens, named.input_tokens.unit, compared(data, (s) => s.input_tokens)),
      card(
        named.cached_tokens.name,
        h("span", {}, compact(summary.cached_tokens),
          h("span", { class: "card-of" }, ` of ${compact(summary.input_tokens)}`)),
        `${exact(summary.cached_tokens)} of ${exact(summary.input_tokens)} input tokens`,
        {
          sub: `${percent(summary.cached_tokens, summary.input_tokens)} of input from cache`,
          current: summary.cached_tokens,
          compared: compared(data, (s) => s.cached_tokens),
          unit: named.cached_tokens.unit,
        },
      ),
      figureCard(named.output_tokens.name, summary.output_tokens, named.output_tokens.unit, compared(data, (s) => s.output_tokens)),
      figureCard(named.successful_requests.name, summary.successful_requests, named.successful_requests.unit, compared(data, (s) => s.successful_requests)),
      figureCard(named.failed_requests.name, summary.failed_requests, named.failed_requests.unit, compared(data, (s) => s.failed_requests)),
    ];
  },
  chartsOf: (data, context) => {
    const half = halfWidth(context.width);
    return [
      tokensOverTime(data, context),
      grid(
        ranked(
          "Top consumers",
          consumers(data),
          { agent: COLORS.agent, user: COLORS.user, other: COLORS.other },
          {
            width: half, xLabel: "total tokens", mark: "top consumers", span: context.span,
            choose: (bar) => context.choose("identity", bar.id, bar.label),
            nameOf: (bar) => (bar.kind === "other" ? null : `Filter LLM by consumer ${bar.label}`),
          },
        ),
        ranked(
          "By model",
          rankedBars(
            data.by_model,
            data.other_models,
            (item) => ({ id: item.model, label: item.model, kind: "model" }),
            (sums) => sums.total_tokens,
            tokenDetails,
          ),
          { model: COLORS.model, other: COLORS.other },
          {
            width: half, xLabel: "total tokens", mark: "by model", span: context.span,
            choose: (bar) => context.choose("model", bar.id, bar.label),
            nameOf: (bar) => (bar.kind === "other" ? null : `Filter LLM by model ${bar.label}`),
          },
        ),
      ),
    ];
  },
};

/** Tokens over time by token type (the default), or stacked by model or consumer. */
function tokensOverTime(data: LlmUsage, context: Context<"llm">): HTMLElement {
  const title = "Tokens over time";
  const actions = chartActions("LLM tokens", context, [
    [null, "Token type"],
    ["model", "Model"],
    ["identity", "Consumer"],
  ]);
  const mark = "tokens over time";
  const options = {
    layout: "stack" as const, width: context.width, yLabel: "tokens", mark,
    zone: context.zone, actions, rules: context.rules(mark),
  };
  if (context.split) {
    return splitChart(title, context, actions, (groups) =>
      groupTimeline(title, groups, (b) => b.cached_input_tokens + b.fresh_input_tokens + b.output_tokens, "tokens", options),
    );
  }
  return timeline(
    title,
    data,
    [
      { key: "Cached input", value: (b) => b.cached_input_tokens, unit: "tokens", color: COLORS.cached },
      { key: "Fresh input", value: (b) => b.fresh_input_tokens, unit: "tokens", color: COLORS.fresh },
      { key: "Output", value: (b) => b.output_tokens, unit: "tokens", color: COLORS.output },
    ],
    options,
  );
}

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
