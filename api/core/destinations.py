"""Where the exporter writes (DESIGN §11): ``USAGE_EXPORT_URL`` and ``USAGE_EXPORT_ENDPOINT``
read and checked, without touching the destination."""

import urllib.parse
from pathlib import PurePosixPath

import msgspec


class Destination(msgspec.Struct, frozen=True, kw_only=True):
    """A bucket and key prefix (``scheme`` s3), or a directory (``scheme`` file, ``bucket``
    empty, ``prefix`` the absolute path)."""

    scheme: str
    bucket: str
    prefix: str
    # A non-AWS S3 endpoint: http or https, host and port.
    endpoint_scheme: str | None = None
    endpoint_host: str | None = None

    @property
    def url(self) -> str:
        if self.scheme == "file":
            return f"file://{self.prefix}"
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def path(self, *parts: str) -> str:
        """A file's path as the filesystem names it: ``bucket/prefix/parts...`` or
        ``/directory/parts...``."""
        if self.scheme == "file":
            root = self.prefix
        else:
            root = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return "/".join((root, *parts))


def parse(url: str, endpoint: str | None = None) -> Destination:
    """The destination ``url`` names; ValueError saying what is wrong with it otherwise."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.query or parsed.fragment:
        raise ValueError(
            f"{url!r} has a query or fragment; give s3://bucket/prefix or file:///path"
        )
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"{url!r} names no bucket: give s3://bucket/prefix")
        return Destination(
            scheme="s3",
            bucket=parsed.netloc,
            prefix=_clean(parsed.path, url),
            **_endpoint(endpoint),
        )
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{url!r} names a host: give file:///absolute/path")
        if not parsed.path.startswith("/") or parsed.path == "/":
            raise ValueError(f"{url!r} names no directory: give file:///absolute/path")
        if endpoint:
            raise ValueError("USAGE_EXPORT_ENDPOINT is for s3:// destinations only")
        return Destination(scheme="file", bucket="", prefix="/" + _clean(parsed.path, url))
    raise ValueError(f"{url!r} is neither s3://bucket/prefix nor file:///path")


def _clean(path: str, url: str) -> str:
    """The path without its outer slashes; refused if it climbs (``..``) or is empty inside."""
    parts = path.strip("/").split("/")
    if parts == [""]:
        return ""
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{url!r} has an empty, '.' or '..' path segment")
    return str(PurePosixPath(*parts))


def _endpoint(endpoint: str | None) -> dict[str, str]:
    if not endpoint:
        return {}
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"USAGE_EXPORT_ENDPOINT {endpoint!r} must be http(s)://host[:port], not a path"
        )
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ValueError(f"USAGE_EXPORT_ENDPOINT {endpoint!r} must be http(s)://host[:port]")
    return {"endpoint_scheme": parsed.scheme, "endpoint_host": parsed.netloc}
