"""Hypothesis strategies for event sets full of the hard cases, and ways to deliver them."""

import itertools
from datetime import datetime, timedelta

from hypothesis import strategies as st

from testkit.factories import (
    BASE_TIME,
    identity,
    iso,
    llm_call,
    message_sent,
    thread_created,
    volume_deleted,
    volume_provisioned,
    workload_allocated,
    workload_released,
)


def times_from(base: datetime) -> st.SearchStrategy[datetime]:
    """Times from ``base`` on: most in two hours, some over three days, so every rollup tier
    holds some; on whole minutes (bucket boundaries in every zone tested) and a microsecond
    either side of them, or within the second."""
    return st.builds(
        lambda minutes, micros: base + timedelta(minutes=minutes, microseconds=micros),
        st.integers(0, 120) | st.integers(0, 3 * 1440),
        st.sampled_from([0, 0, 0, 1, -1, 500_000]),
    )


times = times_from(BASE_TIME)
identities = st.builds(
    identity,
    st.sampled_from(["a1", "a2", "a3"]),
    st.sampled_from(["agent", "user"]),
    st.sampled_from([None, "Ann", "Bob"]),
)
orgs = st.sampled_from(["acme", "acme", "globex"])
_workloads = st.sampled_from(["w1", "w2"])
_volumes = st.sampled_from(["v1", "v2"])
_agents = st.sampled_from(["a1", "a2"])


def events_at(times: st.SearchStrategy[datetime]) -> st.SearchStrategy[dict]:
    """Any event, at one of ``times``."""
    return st.one_of(
        st.builds(
            lambda t, w, o, m, n, i, ok: llm_call(
                time=t,
                who=w,
                org=o,
                model=m,
                input_tokens=n,
                cached_tokens=n // 3,
                output_tokens=i,
                succeeded=ok,
            ),
            times,
            identities,
            orgs,
            st.sampled_from(["m1", "m2", "m3"]),
            st.integers(0, 10**6),
            st.integers(0, 10**4),
            st.booleans(),
        ),
        st.builds(
            lambda t, w, a, c, o: workload_allocated(w, agent=a, cpu_cores=c, time=t, org=o),
            times,
            _workloads,
            _agents,
            st.sampled_from([0.5, 1, 2]),
            orgs,
        ),
        st.builds(lambda t, w, o: workload_released(w, time=t, org=o), times, _workloads, orgs),
        st.builds(
            lambda t, v, s, a, o: volume_provisioned(v, size_bytes=s, agent=a, time=t, org=o),
            times,
            _volumes,
            st.sampled_from([2**30, 5 * 2**30, 3 * 2**29]),
            _agents,
            orgs,
        ),
        st.builds(lambda t, v, o: volume_deleted(v, time=t, org=o), times, _volumes, orgs),
        st.builds(lambda t, w, o: thread_created(time=t, who=w, org=o), times, identities, orgs),
        st.builds(lambda t, w, o: message_sent(time=t, who=w, org=o), times, identities, orgs),
    )


def event_sets_at(times: st.SearchStrategy[datetime]) -> st.SearchStrategy[list[dict]]:
    return st.lists(events_at(times), min_size=1, max_size=30)


event_sets = event_sets_at(times)


@st.composite
def deliveries(draw, events):
    """The events shuffled, some sent again, cut into batches."""
    resent = draw(st.lists(st.sampled_from(events), max_size=10))
    stream = draw(st.permutations(events + resent))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# What a producer may measure again when it rebuilds an event to retry it.
_REMEASURED = {
    "input_tokens": st.integers(0, 10**6),
    "output_tokens": st.integers(0, 10**4),
    "cpu_cores": st.sampled_from([0.25, 4]),
    "size_bytes": st.sampled_from([2**31, 7 * 2**30]),
}


@st.composite
def rebuilt(draw, event: dict) -> dict:
    """``event`` as a producer that rebuilds it to retry it sends it again: the same subject,
    source and id, with the time taken again (up to three days earlier or later, the
    acceptance allowing) and perhaps some figures measured again."""
    time = datetime.fromisoformat(event["time"]) + timedelta(
        minutes=draw(st.integers(-3 * 1440, 3 * 1440)), microseconds=draw(st.integers(0, 999))
    )
    data = dict(event["data"])
    for name in draw(st.lists(st.sampled_from(sorted(_REMEASURED)), unique=True)):
        if name in data:
            data[name] = draw(_REMEASURED[name])
    if "cached_tokens" in data:
        data["cached_tokens"] = min(data["cached_tokens"], data["input_tokens"])
    return {**event, "time": iso(time), "data": data}


@st.composite
def retries(draw, events):
    """``deliveries`` where some events are sent again rebuilt (``rebuilt``), before or after
    the first copy. The first copy sent of each is the one stored (DESIGN §5)."""
    again = draw(st.lists(st.sampled_from(events), max_size=8))
    return draw(deliveries([*events, *(draw(rebuilt(event)) for event in again)]))
