"""The destination's objects, through pyarrow's filesystems (its S3 client is the AWS SDK's,
with the SDK's credentials chain: the ``AWS_*`` variables, ``~/.aws``, instance roles).

An object appears whole or not at all: it is made in memory (a file holds at most a million
rows) and sent in one upload, which S3 publishes atomically when it completes; in a
directory it is written under a temporary name (``_tmp-*``, which readers of ``*.parquet``
skip) and renamed.
"""

import asyncio
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from pyarrow import fs

from api.core.destinations import Destination
from api.export import layout

# Seconds: an unreachable or silent store fails the pass (retried with backoff), never
# stalls it.
_CONNECT_TIMEOUT = 10
_REQUEST_TIMEOUT = 60


class StoreError(Exception):
    """The destination refused or did not answer."""


def filesystem(destination: Destination) -> fs.FileSystem:
    if destination.scheme == "file":
        return fs.LocalFileSystem()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return fs.S3FileSystem(
        region=region,
        endpoint_override=destination.endpoint_host,
        scheme=destination.endpoint_scheme or "https",
        connect_timeout=_CONNECT_TIMEOUT,
        request_timeout=_REQUEST_TIMEOUT,
        # The exporter retries a failed pass with backoff; the SDK's own retries are few.
        retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=3),
        # A file is whole in memory before it is sent: one PutObject where it fits one,
        # not a multipart upload begun when the stream opens.
        allow_delayed_open=True,
    )


class Store:
    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self._fs = filesystem(destination)
        self._local = destination.scheme == "file"

    def _error(self, error: OSError) -> StoreError:
        return StoreError(f"{self.destination.url}: {error}")

    def put(self, key: str, data: bytes | memoryview) -> None:
        """The object ``key`` (a path under the destination) holding ``data``, replaced
        whole if it exists."""
        final = self.destination.path(key)
        target = final
        try:
            if self._local:
                folder = final.rsplit("/", 1)[0]
                self._fs.create_dir(folder, recursive=True)
                target = f"{folder}/_tmp-{uuid.uuid4().hex}"
            with self._fs.open_output_stream(target) as stream:
                stream.write(data)
            if self._local:
                self._fs.move(target, final)
        except OSError as error:
            raise self._error(error) from error

    def get(self, key: str) -> bytes | None:
        """The object's bytes; None if there is none."""
        try:
            with self._fs.open_input_stream(self.destination.path(key)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._error(error) from error

    def delete(self, key: str) -> None:
        try:
            self._fs.delete_file(self.destination.path(key))
        except FileNotFoundError:
            pass
        except OSError as error:
            raise self._error(error) from error


async def write_manifest(
    store: Store, dataset: str, day: date, generation: int, files: Sequence[layout.Listed]
) -> None:
    """The partition's manifest ``generation``, listing ``files``, written after them."""
    document = layout.manifest(dataset, day, generation, datetime.now(UTC), files)
    await asyncio.to_thread(store.put, layout.manifest_key(dataset, day), document)
