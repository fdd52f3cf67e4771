"""The folders are layers and imports only point down them (api/__init__.py says which may
import which); bench/ and tests/ share the test kit, neither imports the other."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Each layer may import its own modules and those of a lower rank.
RANK = {
    "api.core": 0,
    "api.settings": 1,
    "api.progress": 1,
    "api.storage": 2,
    "api.reads": 3,
    "api.alerts": 4,
    "api.export": 4,
    "api.web": 5,
    "api.dev": 6,
    "api.cli": 7,
}


def _layer(module: str) -> str:
    return next(layer for layer in RANK if module == layer or module.startswith(layer + "."))


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


SERVICE = sorted(path for path in (ROOT / "api").rglob("*.py") if path.name != "__init__.py")


@pytest.mark.parametrize("path", SERVICE, ids=lambda path: _module(path))
def test_the_service_imports_only_down_its_layers(path):
    layer = _layer(_module(path))
    upward = {
        name
        for name in _imports(path)
        if name.startswith("api.") and _module_exists(name) and RANK[_layer(name)] > RANK[layer]
    }
    assert not upward, f"{_module(path)} ({layer}) imports from above it: {sorted(upward)}"


def _module_exists(name: str) -> bool:
    """``from api.x import y`` names y as ``api.x.y`` too: only modules and packages count."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


@pytest.mark.parametrize(
    ("folder", "forbidden"), [("bench", "tests"), ("testkit", "tests"), ("testkit", "bench")]
)
def test_the_test_kit_is_shared_not_borrowed(folder, forbidden):
    for path in (ROOT / folder).rglob("*.py"):
        assert not {name for name in _imports(path) if name.split(".")[0] == forbidden}, path


def test_no_test_imports_from_another_test_module():
    for path in (ROOT / "tests").rglob("*.py"):
        borrowed = {name for name in _imports(path) if name.rsplit(".", 1)[-1].startswith("test_")}
        assert not borrowed, f"{path.relative_to(ROOT)} imports {sorted(borrowed)}"
