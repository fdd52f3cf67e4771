"""An API answer beside the oracle's: bucket starts as epoch microseconds, floats equal to
within 1e-9 (relative), everything else exactly."""

from datetime import datetime
from typing import Any

from testkit.invariants import same
from testkit.oracle import epoch_us


def comparable(value: Any) -> Any:
    """The response with bucket bounds as epoch microseconds, like the oracle's."""
    if isinstance(value, dict):
        return {
            key: epoch_us(datetime.fromisoformat(item))
            if key in ("start", "end") and isinstance(item, str)
            else comparable(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def assert_equal(actual: Any, expected: Any, path: str = "") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for key in expected:
            assert_equal(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for n, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_equal(a, e, f"{path}[{n}]")
    elif isinstance(expected, float):
        assert same(actual, expected), f"{path}: {actual} != {expected}"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"
