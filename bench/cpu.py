"""CPU time a PostgreSQL node spends, read from /proc: its postmaster's own, its live
processes' (backends, workers) and those it has reaped. For the per-node costs the Citus
bench reports (the capacity model's inputs)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def process_times(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / _TICKS, (cutime + cstime) / _TICKS


def cpu_seconds(data_dir: Path) -> float:
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    own, reaped = process_times(postmaster)
    total = own + reaped
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == postmaster:
                total += process_times(int(entry.name))[0]
        except (OSError, ValueError):
            continue  # gone meanwhile: its time is in the postmaster's reaped time
    return total


@contextmanager
def metered(nodes: dict[str, Path]) -> Iterator[dict[str, float]]:
    """CPU seconds each node (name → data directory) spent inside the block, in the dict
    yielded (filled on exit)."""
    before = {name: cpu_seconds(path) for name, path in nodes.items()}
    used: dict[str, float] = {}
    yield used
    used.update({name: cpu_seconds(path) - before[name] for name, path in nodes.items()})
