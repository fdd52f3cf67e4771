"""Filters of the usage reads (pure): which usage counts, by model, identity, agent or org.

Several values of one filter match any of them; different filters must all match.
"""

import re
from dataclasses import dataclass

from api.core.events import is_slug

FILTERS = ("model", "identity", "agent", "org")
MAX_VALUES = 20
MAX_LENGTH = 200
IDENTITY_KINDS = ("agent", "user")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class FilterError(ValueError):
    """A filter the read does not take, or a value it cannot be; names the parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Filters:
    """Each given filter's values, in the order given, repeats dropped."""

    values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.values)

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return dict(self.values)[name]

    def as_dict(self) -> dict[str, list[str]]:
        return {name: list(values) for name, values in self.values}

    def identities(self) -> tuple[list[str], list[str]]:
        """The identity filter's kinds and ids, as parallel lists."""
        pairs = [value.split(":", 1) for value in self["identity"]]
        return [kind for kind, _ in pairs], [id_ for _, id_ in pairs]


def parse_filters(given: dict[str, list[str]], allowed: tuple[str, ...]) -> Filters:
    """The filters among ``given`` (query parameter → its values), each one that ``allowed``
    lists and with valid values, or ``FilterError``."""
    found = []
    for name in FILTERS:
        values = given.get(name)
        if not values:
            continue
        if name not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no filters"
            raise FilterError(name, f"{name} is not a filter of this read; it {takes}")
        if len(values) > MAX_VALUES:
            raise FilterError(name, f"{name} takes at most {MAX_VALUES} values, not {len(values)}")
        for value in values:
            _check(name, value)
        found.append((name, tuple(dict.fromkeys(values))))
    return Filters(tuple(found))


def _check(name: str, value: str) -> None:
    if not value:
        raise FilterError(name, f"{name} must not be empty")
    if len(value) > MAX_LENGTH:
        raise FilterError(name, f"{name} values are at most {MAX_LENGTH} characters")
    if _CONTROL.search(value):
        raise FilterError(name, f"{name} values must not hold control characters")
    if name == "identity":
        kind, colon, id_ = value.partition(":")
        if kind not in IDENTITY_KINDS or not colon or not id_:
            raise FilterError(
                name, f"identity is kind:id with kind agent or user (agent:agt-1), not {value!r}"
            )
    if name == "org" and not is_slug(value):
        raise FilterError(name, f"org must be an organization slug, not {value!r}")
