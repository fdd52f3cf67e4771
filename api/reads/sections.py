"""The usage sections, in the order the page shows them: the routes are made from this list."""

from api.reads.allocated import COMPUTE, STORAGE
from api.reads.engine import Section
from api.reads.llm import LLM
from api.reads.platform import PLATFORM

SECTIONS: tuple[Section, ...] = (LLM, COMPUTE, STORAGE, PLATFORM)
SECTION_NAMES = tuple(section.name for section in SECTIONS)
SECTION_NAMED = {section.name: section for section in SECTIONS}
