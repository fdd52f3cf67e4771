"""scripts/prerequisites.sh, which `make run` and `make test` call before anything else:
silent on a machine that has everything; for a user who cannot install, one line that says
what to install, and a failure (as root it installs with apt-get, which CI's fresh machines
go through: .ci/run calls it first)."""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "prerequisites.sh"


def _run_unprivileged(*needs: str, **env: str) -> subprocess.CompletedProcess:
    command = [str(SCRIPT), *needs]
    if os.geteuid() == 0:  # as a user who cannot install packages
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )


def test_a_machine_with_everything_goes_on_silently():
    result = _run_unprivileged("postgresql", "chromium")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_missing_browser_stops_with_one_line_saying_what_to_install(tmp_path):
    result = _run_unprivileged("postgresql", "chromium", CHROMIUM=str(tmp_path / "chromium"))
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "Chromium" in line and "apt-get install chromium" in line
