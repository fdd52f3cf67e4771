"""The LLM section: tokens and requests per bucket, by consuming identity and by model."""

from functools import cache
from typing import Any

from sqlalchemy import CTE, Subquery, select

from api.core.windows import Bucket
from api.reads.engine import Breakdown, Section, by_org
from api.reads.query import TOTALS, Reach, Shape
from api.reads.responses import (
    LLM_GROUPS,
    AllOrgsLlmUsage,
    ConsumerUsage,
    IdentityOut,
    LlmBucket,
    LlmOrgUsage,
    LlmPrevious,
    LlmSummary,
    LlmUsage,
    ModelUsage,
    OtherLlmOrgs,
    OtherTokens,
)
from api.reads.sql import (
    Counted,
    code_point_order,
    top_n,
    total,
    with_names,
)
from api.storage import rollups
from api.storage.db import Compiled, compile_statement
from api.storage.schema import (
    LLM_MEASURES,
)

_MEASURES = LLM_MEASURES
_KEYS = ("identity_kind", "identity_id", "model")


def _token_sums(facts: CTE, *keys: Any) -> Subquery:
    return (
        select(
            *keys,
            total(facts.c.input_tokens).label("input_tokens"),
            total(facts.c.cached_tokens).label("cached_tokens"),
            total(facts.c.output_tokens).label("output_tokens"),
            total(facts.c.input_tokens + facts.c.output_tokens).label("total_tokens"),
            total(facts.c.successful_requests + facts.c.failed_requests).label("requests"),
        )
        .group_by(*keys)
        .subquery()
    )


_TOKEN_SUMS = ["input_tokens", "cached_tokens", "output_tokens", "total_tokens", "requests"]


def _top_consumers(facts: CTE, reach: Reach) -> Compiled:
    sums = _token_sums(facts, facts.c.org_id, facts.c.identity_kind, facts.c.identity_id)
    joined, name = with_names(sums, sums.c.identity_kind, sums.c.identity_id, reach)
    named = select(sums, name).select_from(joined).subquery()
    return compile_statement(
        top_n(
            named,
            ["org_id", "identity_kind", "identity_id", "name"],
            _TOKEN_SUMS,
            lambda item: [
                item.c.total_tokens.desc(),
                code_point_order(item.c.identity_id),
                item.c.identity_kind,
                code_point_order(item.c.org_id),
            ],
        )
    )


def _by_model(facts: CTE) -> Compiled:
    sums = _token_sums(facts, facts.c.model)
    return compile_statement(
        top_n(
            sums,
            ["model"],
            _TOKEN_SUMS,
            lambda item: [item.c.total_tokens.desc(), code_point_order(item.c.model)],
        )
    )


def _by_org(facts: CTE) -> Compiled:
    sums = (
        select(
            facts.c.org_id,
            *(total(facts.c[name]).label(name) for name in _MEASURES),
            total(facts.c.input_tokens + facts.c.output_tokens).label("total_tokens"),
        )
        .group_by(facts.c.org_id)
        .subquery()
    )
    return compile_statement(
        top_n(
            sums,
            ["org_id"],
            [*_MEASURES, "total_tokens"],
            lambda item: [item.c.total_tokens.desc(), code_point_order(item.c.org_id)],
        )
    )


_COUNTED = Counted(
    rollups.LLM, _MEASURES, score=lambda facts: facts.c.input_tokens + facts.c.output_tokens
)


@cache
def _statements(shape: Shape) -> list[Compiled]:
    statements = [
        compile_statement(_COUNTED.series(shape)),
        _top_consumers(_COUNTED.facts(TOTALS, shape, "identity_kind", "identity_id"), shape.reach),
        _by_model(_COUNTED.facts(TOTALS, shape, "model")),
    ]
    if shape.reach is Reach.ALL:
        statements.append(_by_org(_COUNTED.facts(TOTALS, shape)))
    return statements


def _bucket(bucket: Bucket, row: Any) -> LlmBucket:
    input_tokens, cached_tokens, output_tokens, successful, failed = (
        getattr(row, name) if row else 0 for name in _MEASURES
    )
    return LlmBucket(
        start=bucket.start,
        end=bucket.end,
        partial=bucket.partial,
        cached_input_tokens=cached_tokens,
        fresh_input_tokens=input_tokens - cached_tokens,
        output_tokens=output_tokens,
        successful_requests=successful,
        failed_requests=failed,
    )


def _summary(series: list[LlmBucket]) -> LlmSummary:
    return LlmSummary(
        input_tokens=sum(b.cached_input_tokens + b.fresh_input_tokens for b in series),
        cached_tokens=sum(b.cached_input_tokens for b in series),
        output_tokens=sum(b.output_tokens for b in series),
        successful_requests=sum(b.successful_requests for b in series),
        failed_requests=sum(b.failed_requests for b in series),
    )


def _consumer(row: Any, reach: Reach) -> ConsumerUsage:
    identity = IdentityOut(
        kind=row.identity_kind,
        id=row.identity_id,
        name=row.name or row.identity_id,
        org=row.org_id if reach is Reach.ALL else None,
    )
    return ConsumerUsage(identity=identity, **_token_fields(row))


def _token_fields(row: Any) -> dict[str, int]:
    return {name: getattr(row, name) for name in _TOKEN_SUMS}


def _summary_fields(row: Any) -> dict[str, int]:
    return {name: getattr(row, name) for name in _MEASURES}


def _other_tokens(row: Any) -> OtherTokens:
    return OtherTokens(count=row.count, **_token_fields(row))


LLM = Section(
    name="llm",
    title="Tokens and requests",
    all_orgs_title="Tokens and requests, all organizations",
    details="By consumer and model.",
    statements=_statements,
    filters=("model", "identity"),
    group_by=("model", "identity"),
    grouped=_COUNTED.grouped,
    groups=LLM_GROUPS,
    bucket=_bucket,
    summary=_summary,
    breakdowns=(
        Breakdown("top_consumers", "other_consumers", _consumer, _other_tokens),
        Breakdown(
            "by_model",
            "other_models",
            lambda row, _: ModelUsage(model=row.model, **_token_fields(row)),
            _other_tokens,
        ),
    ),
    by_org=by_org(LlmOrgUsage, OtherLlmOrgs, _summary_fields),
    usage=LlmUsage,
    all_orgs_usage=AllOrgsLlmUsage,
    previous=LlmPrevious,
    span_summary=cache(_COUNTED.span_summary),
    summary_type=LlmSummary,
    keys=_KEYS,
    keyed_series=cache(lambda shape: compile_statement(_COUNTED.series(shape, _KEYS))),
)
