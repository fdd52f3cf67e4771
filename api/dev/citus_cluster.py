"""A Citus cluster on this machine, for tests and benchmarks: a coordinator and workers, each a
private PostgreSQL (api.dev.embedded_postgres) in a folder of its own, on unix sockets with
distinct ports, with Citus preloaded.

Citus is not part of Debian's PostgreSQL: it is installed from its own packages (or built from
source); ``installed()`` says whether this machine's PostgreSQL has it.
"""

import os
import shutil
import subprocess
from pathlib import Path

from api.dev.embedded_postgres import DATABASE, EmbeddedPostgres, bin_dir

FIRST_PORT = 5501
# Few shards: a test cluster's tables are small, and every DDL statement runs once per shard.
SHARD_COUNT = 8


def installed() -> bool:
    """Whether the PostgreSQL whose binaries the embedded clusters use has the Citus library."""
    pg_config = bin_dir() / "pg_config"
    if not pg_config.exists():
        return False
    found = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True)
    return (Path(found.stdout.strip()) / "citus.so").exists()


class CitusCluster:
    def __init__(
        self,
        folder: Path,
        *,
        workers: int = 2,
        durable: bool = False,
        first_port: int = FIRST_PORT,
        settings: dict[str, str] | None = None,
    ) -> None:
        """``durable`` and ``settings`` as api.dev.embedded_postgres takes them, for every
        node."""
        self.folder = folder.resolve()
        self.durable = durable
        self.settings = settings or {}
        self.first_port = first_port
        self.coordinator = self._node("coordinator", 0)
        self.workers = [self._node(f"worker{n}", n) for n in range(1, workers + 1)]

    def _node(self, name: str, index: int) -> EmbeddedPostgres:
        settings = {
            "shared_preload_libraries": "citus",
            "citus.shard_count": str(SHARD_COUNT),
            # Shard moves (rebalancing) copy through logical replication.
            "wal_level": "logical",
            "max_connections": "200",
            # A transaction a worker's crash left prepared is resolved within a second, not
            # the default minute (its row locks hold the next batches back until then).
            "citus.recover_2pc_interval": "1s",
            # How a node reaches itself (the rebalancer's background jobs): its socket.
            "citus.local_hostname": str(self.folder / name),
            # The service turns JIT off on its connections; Citus' connections to the workers
            # do not carry that (docs/scaling-out.md: set it on every node).
            "jit": "off",
            **self.settings,
        }
        return EmbeddedPostgres(
            self.folder / name,
            durable=self.durable,
            port=self.first_port + index,
            settings=settings,
        )

    @property
    def url(self) -> str:
        """The service's DATABASE_URL: the coordinator."""
        return self.coordinator.url

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the nodes run as postgres (api.dev.embedded_postgres)
            shutil.chown(self.folder, "postgres", "postgres")
        for node in [self.coordinator, *self.workers]:
            node.start()
        for worker in self.workers:
            worker.psql("CREATE EXTENSION IF NOT EXISTS citus")
        self.distribute_into(DATABASE)

    def create_database(self, name: str) -> str:
        """A new database of that name on every node, with Citus on the workers only: on
        the coordinator it is a plain PostgreSQL database until ``distribute_into``. Its URL."""
        for node in [self.coordinator, *self.workers]:
            node.psql(f"CREATE DATABASE {name}", database="postgres")
        for worker in self.workers:
            worker.psql("CREATE EXTENSION citus", database=name)
        return self.url.replace(f"/{DATABASE}?", f"/{name}?")

    def distribute_into(self, name: str) -> None:
        """Citus in the coordinator's database ``name``, with every worker as a node."""
        coordinator = self.coordinator
        coordinator.psql("CREATE EXTENSION IF NOT EXISTS citus", database=name)
        coordinator.psql(
            f"SELECT citus_set_coordinator_host('{coordinator.socket_dir}', {coordinator.port})",
            database=name,
        )
        for worker in self.workers:
            self.add(worker, database=name)

    def add(self, worker: EmbeddedPostgres, database: str = DATABASE) -> None:
        """``worker`` (started, with the extension) as a node of the cluster."""
        self.coordinator.psql(
            f"SELECT citus_add_node('{worker.socket_dir}', {worker.port})", database=database
        )

    def new_worker(self) -> EmbeddedPostgres:
        """One more worker, started, with the extension, not yet added (``add``)."""
        worker = self._node(f"worker{len(self.workers) + 1}", len(self.workers) + 1)
        worker.start()
        worker.psql("CREATE EXTENSION IF NOT EXISTS citus")
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for node in [*self.workers, self.coordinator]:
            node.stop()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
