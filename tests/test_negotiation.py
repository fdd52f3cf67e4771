"""Accept headers: q-values, wildcards and refusals."""

import pytest

from api.core.negotiation import preferred

OFFERED = ["application/json", "text/csv"]
JSON, CSV = OFFERED


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("text/csv", CSV),
        ("text/csv;q=0", None),  # only the ranges named are acceptable (RFC 9110 §12.5.1)
        ("text/csv;q=0, */*", JSON),
        ("text/csv;q=0, application/json;q=0", None),
        ("application/json;q=0", None),
        ("text/*", CSV),
        ("text/*;q=0.5, application/json;q=0.4", CSV),
        ("application/json;q=0.4, text/csv;q=0.5", CSV),
        ("application/json, text/csv", JSON),
        ("TEXT/CSV", CSV),
        ("text/csv; q=1.0", CSV),
        ("text/html", None),
        ("text/csv;q=2", JSON),  # an unreadable q: the range is not used
        ("*/*;q=0", None),
        ("*/*;q=0, text/csv", CSV),
    ],
)
def test_examples(accept, chosen):
    assert preferred(accept, OFFERED) == chosen
