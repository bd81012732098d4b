"""The domain is plain Python: it imports neither grpc nor a database driver."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import onecard_hub.domain

FORBIDDEN = {"grpc", "aiosqlite", "sqlite3", "asyncpg", "google", "onecard", "socket", "asyncio"}
DOMAIN = Path(onecard_hub.domain.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_modules_import_no_io_library() -> None:
    files = sorted(DOMAIN.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            assert top not in FORBIDDEN and not top.startswith("grpc"), f"{path.name} imports {name}"


def test_importing_the_domain_loads_no_io_library() -> None:
    code = (
        "import sys, pkgutil, importlib, onecard_hub.domain as d\n"
        "for m in pkgutil.iter_modules(d.__path__): importlib.import_module('onecard_hub.domain.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('grpc', 'aiosqlite', 'sqlite3', 'asyncpg')]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
