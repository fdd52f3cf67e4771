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


def bin_dir() -> Path:
    """The directory of the newest PostgreSQL server binaries on this machine."""
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
    def __init__(
        self,
        folder: Path,
        *,
        durable: bool = True,
        port: int = 5432,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``durable=False`` trades crash safety for speed: for throwaway test clusters.
        ``port`` names the socket (several clusters may share a folder's parent);
        ``settings`` are server settings beyond those (a Citus node's, for instance)."""
        self.folder = folder.resolve()
        self.durable = durable
        self.port = port
        self.settings = settings or {}
        self.data = self.folder / "data"
        self.socket_dir = self.folder
        self.bin = bin_dir()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        user = "postgres" if self._as_postgres else pwd.getpwuid(os.geteuid()).pw_name
        return f"postgresql://{user}@/{DATABASE}?host={self.socket_dir}&port={self.port}"

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
                "-o", f"-c listen_addresses='' -k {self.socket_dir} -p {self.port} "
                f"{self._options()}",
            )  # fmt: skip
        self._create_database()

    def _options(self) -> str:
        # Statistics of a new database's tables within seconds, not autovacuum's default
        # minute: until its first ANALYZE a table is planned as nearly empty, and the
        # allocations' statements of the load test's mix ran at 3,800 events/s, 10,100 after.
        settings = {"autovacuum_naptime": "5s"}
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        settings |= self.settings
        return " ".join(f"-c {name}={value}" for name, value in settings.items())

    def psql(self, statement: str, database: str = DATABASE) -> str:
        """``statement``'s rows as psql prints them unaligned (a line per row)."""
        found = self._run("psql", *self._address(), "-d", database, "-tAc", statement)
        return found.stdout.strip()

    def _address(self) -> list[str]:
        return ["-h", str(self.socket_dir), "-p", str(self.port)]

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
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'", "postgres")
        if exists != "1":
            self._run("createdb", *self._address(), DATABASE)

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
