"""Every answer of every usage endpoint checked against the oracle (testkit.oracle): the
windows drawn around the events' own times, the filters and groups each section takes."""

from datetime import datetime

from hypothesis import strategies as st

from api.core.windows import PRESET_WIDTHS
from testkit import oracle
from testkit.factories import iso
from testkit.invariants import check_invariants
from testkit.matching import assert_equal, comparable
from testkit.oracle import US, OracleWindow, epoch_us, event_us, from_us

_NUDGES = [0, 0, 1, -1, 150 * US, -299 * US, 3600 * US]


@st.composite
def windows(draw, events: list[dict], tz: str = "UTC") -> tuple[dict[str, str], OracleWindow]:
    times = sorted({event_us(event) for event in events})

    def near_an_event() -> int:
        return draw(st.sampled_from(times)) + draw(st.sampled_from(_NUDGES))

    zone = {} if tz == "UTC" and draw(st.booleans()) else {"tz": tz}
    if draw(st.booleans()):
        preset = draw(st.sampled_from(list(oracle.PRESETS)))
        as_of = from_us(near_an_event() + draw(st.sampled_from([1, 0])))
        bucket = draw(st.sampled_from([None, None, *PRESET_WIDTHS[preset]]))
        params = {"range": preset, "end": iso(as_of), **zone}
        if bucket:
            params["bucket"] = bucket
        return params, OracleWindow.preset(preset, as_of, bucket, tz)
    start, end = sorted([near_an_event(), near_an_event()])
    end += 0 if end > start else draw(st.sampled_from([1, 7 * US, 3 * 3600 * US]))
    bucket = draw(st.sampled_from([None, None, "5m", "15m", "1h", "6h", "1d", "7d"]))
    params = {"start": iso(from_us(start)), "end": iso(from_us(end)), **zone}
    if bucket:
        params["bucket"] = bucket
    return params, OracleWindow.custom(from_us(start), from_us(end), bucket, tz)


# The filters of each section (§4.1) and values that match some events, or none.
_FILTERS = {
    "llm": ["model", "identity"],
    "compute": ["agent"],
    "storage": ["agent"],
    "platform": ["identity"],
}
# The dimensions each section's groups split by (§4.3), besides org across orgs.
_GROUPS = {
    "llm": ["model", "identity"],
    "compute": ["agent"],
    "storage": ["agent"],
    "platform": ["identity"],
}
_FILTER_VALUES = {
    "model": ["m1", "m2", "m3", "gpt-none"],
    "identity": ["agent:a1", "user:a1", "agent:a2", "user:a3", "agent:nobody"],
    "agent": ["a1", "a2", "nobody"],
    "org": ["acme", "globex", "initech"],
}


def _filters(data, names: list[str]) -> dict[str, list[str]]:
    """None half the time; otherwise some of ``names``, each with one to three values."""
    if data.draw(st.booleans()):
        return {}
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    return {
        name: data.draw(
            st.lists(st.sampled_from(_FILTER_VALUES[name]), min_size=1, max_size=3, unique=True)
        )
        for name in chosen
    }


def check_every_endpoint(client, keys, data, events, window, top) -> None:
    """Every section's read and groups, for one organization and all, with filters drawn
    from ``data`` (and compare half the time), against the oracle over ``events``: ``keys``
    are (read key of acme, admin key); ``window`` is (its parameters, the oracle's)."""
    read_key, admin_key = keys
    params, window = window
    params = dict(params)
    compare = data.draw(st.booleans())
    if compare:
        params["compare"] = "previous"
    acme_exists = any(event["subject"] == "acme" for event in events)
    for section, compute in oracle.SECTIONS.items():
        for path, key, org in [
            (f"/orgs/acme/usage/{section}", read_key, "acme"),
            (f"/usage/{section}", admin_key, None),
        ]:
            filters = _filters(data, _FILTERS[section] + ([] if org else ["org"]))
            response = client.get(
                path,
                params={**params, **filters, "top": top},
                headers={"Authorization": f"Bearer {key}"},
            )
            if org and not acme_exists:
                assert response.status_code == 404
                continue
            assert response.status_code == 200, response.text
            body = response.json()
            check_invariants(section, body)
            assert body["org"] == org
            assert epoch_us(datetime.fromisoformat(body["window"]["as_of"])) == window.as_of
            assert body["window"]["bucket"] == window.bucket
            assert body["window"]["tz"] == params.get("tz", "UTC")
            assert body["filters"] == filters
            expected = compute(events, window, top, org, filters=filters)
            actual = comparable({name: body[name] for name in expected})
            assert_equal(actual, expected, section)
            assert ("previous" in body) == compare
            if compare:
                assert_equal(
                    comparable(body["previous"]),
                    _previous(compute, events, window, top, org, filters),
                    f"{section}.previous",
                )
            by = data.draw(st.sampled_from(_GROUPS[section] + ([] if org else ["org"])))
            window_params = {name: value for name, value in params.items() if name != "compare"}
            grouped = client.get(
                f"{path}/groups",
                params={**window_params, **filters, "top": top, "by": by},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert grouped.status_code == 200, grouped.text
            expected = oracle.groups(section, events, window, top, org, filters, by)
            actual = comparable({name: grouped.json()[name] for name in expected})
            assert_equal(actual, expected, f"{section} by {by}")


def _previous(compute, events, window: OracleWindow, top: int, org, filters) -> dict:
    """The oracle's summary over the span of equal length before the counted data."""
    length = window.as_of - window.counted_from
    start, end = window.counted_from - length, window.counted_from
    # Any buckets will do: only the summary is compared.
    span = OracleWindow.custom(from_us(start), from_us(end), "7d")
    summary = compute(events, span, top, org, filters=filters)["summary"]
    return {"start": start, "end": end, "summary": summary}
