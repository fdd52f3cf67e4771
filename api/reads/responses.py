"""The response of every usage endpoint (docs/reading-usage.md), field for field."""

from datetime import datetime
from typing import Literal

import msgspec
from msgspec import UNSET, Struct, UnsetType


class _Out(Struct, frozen=True, kw_only=True):
    pass


class _SeriesPoint(_Out):
    start: datetime
    end: datetime  # exclusive
    partial: bool


class WindowOut(_Out):
    start: datetime
    end: datetime
    as_of: datetime
    range: Literal["24h", "7d", "30d", "custom"]
    bucket: Literal["5m", "15m", "30m", "1h", "6h", "1d", "7d"]
    bucket_seconds: int  # nominal: a bucket across an offset change is shorter or longer
    tz: str  # the IANA zone whose wall clock the bucket boundaries follow


class FiltersOut(_Out):
    """The filters applied, as given (repeats dropped); none given: {}."""

    model: list[str] | UnsetType = UNSET
    identity: list[str] | UnsetType = UNSET
    agent: list[str] | UnsetType = UNSET
    org: list[str] | UnsetType = UNSET


# LLM


class TokenSums(_Out):
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    total_tokens: int
    requests: int


class LlmSummary(_Out):
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    successful_requests: int
    failed_requests: int


class LlmBucket(_SeriesPoint):
    cached_input_tokens: int
    fresh_input_tokens: int
    output_tokens: int
    successful_requests: int
    failed_requests: int


class IdentityOut(Struct, frozen=True, kw_only=True, omit_defaults=True):
    kind: Literal["agent", "user"]
    id: str
    name: str
    org: str | None = None  # cross-org reads only: the same id in two orgs is two identities


class ConsumerUsage(TokenSums):
    identity: IdentityOut


class ModelUsage(TokenSums):
    model: str


class OtherTokens(TokenSums):
    count: int


class LlmOrgUsage(LlmSummary):
    org: str


class OtherLlmOrgs(LlmSummary):
    count: int


class LlmPrevious(_Out):
    """The summary over the span of equal length just before the counted data."""

    start: datetime
    end: datetime
    summary: LlmSummary


class LlmUsage(_Out):
    org: str | None
    window: WindowOut
    filters: FiltersOut
    summary: LlmSummary
    series: list[LlmBucket]
    top_consumers: list[ConsumerUsage]
    by_model: list[ModelUsage]
    other_consumers: OtherTokens | None
    other_models: OtherTokens | None
    # With compare=previous only; null when that span would start before 1970.
    previous: LlmPrevious | UnsetType | None = UNSET


class AllOrgsLlmUsage(LlmUsage, kw_only=True):
    by_org: list[LlmOrgUsage]
    other_orgs: OtherLlmOrgs | None


# Compute


class AgentOut(Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    name: str
    org: str | None = None  # cross-org reads only


class ComputeSummary(_Out):
    cpu_core_hours: float
    ram_gb_hours: float


class ComputeBucket(_SeriesPoint):
    cpu_core_hours: float
    ram_gb_hours: float


class AgentCompute(ComputeSummary):
    agent: AgentOut


class OtherCompute(ComputeSummary):
    count: int


class ComputeOrgUsage(ComputeSummary):
    org: str


class ComputePrevious(_Out):
    """The summary over the span of equal length just before the counted data."""

    start: datetime
    end: datetime
    summary: ComputeSummary


class ComputeUsage(_Out):
    org: str | None
    window: WindowOut
    filters: FiltersOut
    summary: ComputeSummary
    series: list[ComputeBucket]
    top_agents: list[AgentCompute]
    other_agents: OtherCompute | None
    # With compare=previous only; null when that span would start before 1970.
    previous: ComputePrevious | UnsetType | None = UNSET


class AllOrgsComputeUsage(ComputeUsage, kw_only=True):
    by_org: list[ComputeOrgUsage]
    other_orgs: OtherCompute | None


# Storage


class StorageSummary(_Out):
    storage_gb_hours: float


class StorageBucket(_SeriesPoint):
    storage_gb_hours: float


class AgentStorage(StorageSummary):
    agent: AgentOut


class OtherStorage(StorageSummary):
    count: int


class StorageOrgUsage(StorageSummary):
    org: str


class StoragePrevious(_Out):
    """The summary over the span of equal length just before the counted data."""

    start: datetime
    end: datetime
    summary: StorageSummary


class StorageUsage(_Out):
    org: str | None
    window: WindowOut
    filters: FiltersOut
    summary: StorageSummary
    series: list[StorageBucket]
    top_agents: list[AgentStorage]
    other_agents: OtherStorage | None
    # With compare=previous only; null when that span would start before 1970.
    previous: StoragePrevious | UnsetType | None = UNSET


class AllOrgsStorageUsage(StorageUsage, kw_only=True):
    by_org: list[StorageOrgUsage]
    other_orgs: OtherStorage | None


# Platform


class PlatformSummary(_Out):
    threads_created: int
    messages_sent: int


class PlatformBucket(_SeriesPoint):
    threads_created: int
    messages_sent: int


class PlatformOrgUsage(PlatformSummary):
    org: str


class OtherPlatformOrgs(PlatformSummary):
    count: int


class PlatformPrevious(_Out):
    """The summary over the span of equal length just before the counted data."""

    start: datetime
    end: datetime
    summary: PlatformSummary


class PlatformUsage(_Out):
    org: str | None
    window: WindowOut
    filters: FiltersOut
    summary: PlatformSummary
    series: list[PlatformBucket]
    # With compare=previous only; null when that span would start before 1970.
    previous: PlatformPrevious | UnsetType | None = UNSET


class AllOrgsPlatformUsage(PlatformUsage, kw_only=True):
    by_org: list[PlatformOrgUsage]
    other_orgs: OtherPlatformOrgs | None


# Groups over time (GET .../{section}/groups?by=...)


class GroupKey(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a group is: one of these, by the ``by`` asked for."""

    model: str | UnsetType = UNSET
    identity: IdentityOut | UnsetType = UNSET
    agent: AgentOut | UnsetType = UNSET
    org: str | UnsetType = UNSET


def _group_types(section: str, summary: type, bucket: type) -> tuple[type, type, type]:
    """A section's groups response, group and others' group, named after it."""
    group = msgspec.defstruct(
        f"{section}Group",
        [("key", GroupKey), ("summary", summary), ("series", list[bucket])],
        bases=(_Out,),
    )
    other = msgspec.defstruct(
        f"{section}OtherGroups",
        [("count", int), ("summary", summary), ("series", list[bucket])],
        bases=(_Out,),
    )
    groups = msgspec.defstruct(
        f"{section}Groups",
        [
            ("org", str | None),
            ("window", WindowOut),
            ("filters", FiltersOut),
            ("by", str),
            ("groups", list[group]),  # type: ignore[valid-type]
            ("other", other | None),
        ],
        bases=(_Out,),
    )
    return groups, group, other


LLM_GROUPS = _group_types("Llm", LlmSummary, LlmBucket)
COMPUTE_GROUPS = _group_types("Compute", ComputeSummary, ComputeBucket)
STORAGE_GROUPS = _group_types("Storage", StorageSummary, StorageBucket)
PLATFORM_GROUPS = _group_types("Platform", PlatformSummary, PlatformBucket)
