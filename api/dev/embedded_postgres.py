"""A private PostgreSQL cluster in a folder: for `make run` without DATABASE_URL and for tests.

initdb once, then pg_ctl; the server listens only on a unix socket inside the folder. initdb
refuses to run as root, so as root the cluster belongs to, and runs as, the `postgres` user.
"""

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

DATABASE = "usage"


def _bin_dir() -> Path:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not installed:
        raise SystemExit(
            "PostgreSQL server binaries not found: put pg_ctl on PATH or install PostgreSQL "
            "(Debian: apt-get install postgresql), or set DATABASE_URL"
        )
    return Path(installed[-1]).parent


class EmbeddedPostgres:
    def __init__(self, folder: Path, *, durable: bool = True) -> None:
        """``durable=False`` trades crash safety for speed: for throwaway test clusters."""
        self.folder = folder.resolve()
        self.durable = durable
        self.data = self.folder / "data"
        self.socket_dir = self.folder
        self.bin = _bin_dir()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        user = "postgres" if self._as_postgres else pwd.getpwuid(os.geteuid()).pw_name
        return f"postgresql://{user}@/{DATABASE}?host={self.socket_dir}"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb", "-D", str(self.data), "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--no-sync",
            )  # fmt: skip
        if not self.running():
            self._run(
                "pg_ctl", "start", "--wait", "-D", str(self.data),
                "-l", str(self.folder / "postgres.log"),
                "-o", f"-c listen_addresses='' -k {self.socket_dir} {self._speed_options()}",
            )  # fmt: skip
        self._create_database()

    def _speed_options(self) -> str:
        if self.durable:
            return ""
        return "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def stop(self, mode: str = "fast") -> None:
        """``mode`` "immediate" stops as a crash would: recovery from the WAL at next start."""
        if self.running():
            self._run("pg_ctl", "stop", "--wait", "-m", mode, "-D", str(self.data))

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        status = self._run("pg_ctl", "status", "-D", str(self.data), check=False)
        return status.returncode == 0

    def _create_database(self) -> None:
        exists = self._run(
            "psql", "-h", str(self.socket_dir), "-d", "postgres", "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
        )  # fmt: skip
        if exists.stdout.strip() != "1":
            self._run("createdb", "-h", str(self.socket_dir), DATABASE)

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "PGUSER": "postgres"} if self._as_postgres else dict(os.environ)
        result = subprocess.run(
            [str(self.bin / program), *args],
            capture_output=True,
            text=True,
            env=env,
            user="postgres" if self._as_postgres else None,
            cwd="/",
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}")
        return result
