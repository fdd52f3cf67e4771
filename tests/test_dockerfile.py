"""The Dockerfile (docker cannot run here): hadolint passes it, and it keeps the promises
docs/operations.md makes of the image."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_node_builds_the_page_and_a_slim_python_runs_it_as_a_user():
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, re.MULTILINE)
    assert [name for _, name in stages] == ["page", "runtime"]
    assert stages[0][0].startswith("node:") and "slim" in stages[1][0]
    assert "COPY --from=page /src/frontend/dist page/" in DOCKERFILE
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")


def test_it_serves_by_default_and_migrates_as_a_command_of_its_own():
    assert 'ENTRYPOINT ["usage-api"]' in DOCKERFILE
    assert 'CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]' in DOCKERFILE
    assert "migrate" not in DOCKERFILE.split("ENTRYPOINT")[1]


def test_the_build_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".git", ".venv", ".data", "frontend/node_modules"):
        assert path in ignored
