"""The usage sections, in the order the page shows them: the routes are made from this list."""

import msgspec

from api.reads.allocated import COMPUTE, STORAGE
from api.reads.engine import Section
from api.reads.llm import LLM
from api.reads.platform import PLATFORM

SECTIONS: tuple[Section, ...] = (LLM, COMPUTE, STORAGE, PLATFORM)
SECTION_NAMES = tuple(section.name for section in SECTIONS)
SECTION_NAMED = {section.name: section for section in SECTIONS}
# The summary fields that count things (tokens, requests, threads, messages): their limits
# and figures are whole numbers, answered as integers.
COUNTED_MEASURES = frozenset(
    field.name
    for section in SECTIONS
    for field in msgspec.structs.fields(section.summary_type)
    if field.type is int
)


def figure(measure: str, value: float) -> int | float:
    """``value`` as ``measure`` counts it: a whole number for the measures that count."""
    return int(value) if measure in COUNTED_MEASURES else value
