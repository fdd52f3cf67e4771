"""Filter values (pure): what parses, what is refused and why, against a plain restatement
of §4.1."""

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core.filters import FILTERS, FilterError, parse_filters

_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/ é", min_size=1, max_size=40)
_values = {
    "model": _text,
    "identity": st.builds(lambda k, i: f"{k}:{i}", st.sampled_from(["agent", "user"]), _text),
    "agent": _text,
    "org": st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,20}\Z"),
}


@given(st.data())
def test_valid_values_parse_in_order_without_repeats(data):
    chosen = data.draw(st.lists(st.sampled_from(FILTERS), unique=True))
    given_ = {name: data.draw(st.lists(_values[name], min_size=1, max_size=20)) for name in chosen}
    filters = parse_filters(given_, FILTERS)
    assert filters.names == set(chosen)
    for name in chosen:
        assert list(filters[name]) == list(dict.fromkeys(given_[name]))
    assert filters.as_dict() == {
        name: list(dict.fromkeys(given_[name])) for name in FILTERS if name in chosen
    }


@pytest.mark.parametrize(
    ("given", "takes", "field"),
    [
        ({"model": ["a"] * 21}, FILTERS, "model"),
        ({"model": ["x" * 201]}, FILTERS, "model"),
        ({"model": [""]}, FILTERS, "model"),
        ({"agent": ["a\tb"]}, FILTERS, "agent"),
        ({"identity": ["agent"]}, FILTERS, "identity"),
        ({"identity": ["Agent:a1"]}, FILTERS, "identity"),
        ({"identity": [":a1"]}, FILTERS, "identity"),
        ({"org": ["ACME"]}, FILTERS, "org"),
        ({"model": ["gpt-5"]}, ("agent",), "model"),
        ({"org": ["acme"]}, ("model", "identity"), "org"),
    ],
)
def test_refused_values_name_their_filter(given, takes, field):
    with pytest.raises(FilterError) as refused:
        parse_filters(given, takes)
    assert refused.value.field == field


def test_an_identity_id_may_hold_colons():
    filters = parse_filters({"identity": ["user:team:42"]}, ("identity",))
    assert filters.identities() == (["user"], ["team:42"])
