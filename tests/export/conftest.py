"""Where the export tests write: a directory, and a bucket of the suite's own S3 server."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.exported import download
from testkit.object_store import S3Endpoint


@dataclass(frozen=True)
class Target:
    url: str
    endpoint: str | None
    # What the destination holds, as a local folder to read (downloaded from S3 first).
    local: Callable[[], Path]


@pytest.fixture(params=["file", "s3"])
def target(request, tmp_path, monkeypatch) -> Iterator[Target]:
    if request.param == "file":
        yield Target(f"file://{tmp_path}/export", None, lambda: tmp_path / "export")
        return
    s3: S3Endpoint = request.getfixturevalue("s3")
    bucket: str = request.getfixturevalue("bucket")
    for name, value in s3.environ.items():
        monkeypatch.setenv(name, value)
    copies = iter(range(1_000_000))

    def local() -> Path:
        return download(s3, bucket, tmp_path / f"copy-{next(copies)}") / "usage"

    yield Target(f"s3://{bucket}/usage", s3.url, local)
