"""Content negotiation: which offered media type an ``Accept`` header prefers (RFC 9110
§12.5.1), q-values and wildcards included (pure, no I/O)."""

import re
from collections.abc import Sequence

_QUALITY = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def preferred(accept: str | None, offered: Sequence[str]) -> str | None:
    """The offered type the header rates highest (the first offered on ties, and when the
    header is absent or says nothing usable); None when it refuses them all (q=0)."""
    ranges = _ranges(accept or "")
    if not ranges:
        return offered[0]
    best, best_quality = None, 0.0
    for media_type in offered:
        quality = _quality(media_type.lower(), ranges)
        if quality > best_quality:
            best, best_quality = media_type, quality
    return best


def _ranges(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media_range, *parameters = part.split(";")
        media_range = media_range.strip().lower()
        if media_range.count("/") != 1:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                # An unreadable q-value makes its range unusable rather than preferred.
                quality = float(value) if _QUALITY.fullmatch(value.strip()) else -1.0
        if quality >= 0:
            ranges.append((media_range, quality))
    return ranges


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> float:
    """The q of the most specific range that covers ``media_type`` (0 if none does)."""
    kind = media_type.split("/")[0]
    for candidate in (media_type, f"{kind}/*", "*/*"):
        qualities = [quality for media_range, quality in ranges if media_range == candidate]
        if qualities:
            return max(qualities)
    return 0.0
