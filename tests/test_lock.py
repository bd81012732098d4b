"""requirements.lock pins everything pyproject.toml asks for, the environment is installed from it, and a
change of pyproject.toml's dependencies without `make lock` is caught before anything is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from scripts import lock

REPO_ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)(?:\s*;\s*(?P<marker>[^\\]+?))?\s*\\?$"
)


def _pins() -> dict[str, list[tuple[Version, str | None]]]:
    """Every pin of the lock: name → [(version, marker or None)] (a universal lock may fork by marker)."""
    pins: dict[str, list[tuple[Version, str | None]]] = {}
    for line in lock.LOCK.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match["name"])
            pins.setdefault(name, []).append((Version(match["version"]), match["marker"]))
    return pins


def _applies(marker: str | None) -> bool:
    return marker is None or Requirement(f"x; {marker}").marker.evaluate()  # type: ignore[union-attr]


def _pyproject_requirements() -> list[Requirement]:
    data = tomllib.loads(lock.PYPROJECT.read_text(encoding="utf-8"))
    lines = [*data["project"]["dependencies"], *data["project"]["optional-dependencies"]["dev"]]
    lines += data["build-system"]["requires"]
    return [Requirement(line) for line in lines]


def test_the_committed_lock_fits_pyproject() -> None:
    assert lock.check() is None


def test_every_requirement_has_a_pin_inside_its_bounds() -> None:
    pins = _pins()
    for requirement in _pyproject_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        versions = [
            version
            for version, marker in pins.get(canonicalize_name(requirement.name), [])
            if _applies(marker)
        ]
        assert versions, f"{requirement.name} is not pinned in requirements.lock"
        assert all(version in requirement.specifier for version in versions), (requirement, versions)


def test_every_pin_carries_a_hash() -> None:
    text = lock.LOCK.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [block for block in blocks if PIN.match(block.splitlines()[0])]
    assert len(pinned) == sum(len(versions) for versions in _pins().values()) > 50
    assert all("--hash=sha256:" in block for block in pinned)


def test_the_environment_is_installed_from_the_lock() -> None:
    wrong = []
    for name, versions in _pins().items():
        for version, marker in versions:
            if _applies(marker) and Version(metadata.version(name)) != version:
                wrong.append(f"{name}: installed {metadata.version(name)}, locked {version}")
    assert wrong == [], "install with `make venv`"


def test_the_lock_names_no_index_and_no_local_path() -> None:
    text = lock.LOCK.read_text(encoding="utf-8")
    assert "://" not in text
    assert "--index-url" not in text and "--find-links" not in text
    assert "/tmp" not in text


def _copy_project(tmp_path: Path) -> tuple[Path, Path]:
    pyproject, locked = tmp_path / "pyproject.toml", tmp_path / "requirements.lock"
    shutil.copyfile(lock.PYPROJECT, pyproject)
    shutil.copyfile(lock.LOCK, locked)
    return pyproject, locked


def test_a_new_dependency_without_a_new_lock_is_refused(tmp_path: Path) -> None:
    pyproject, locked = _copy_project(tmp_path)
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        text.replace('"rich>=15.0.0",', '"rich>=15.0.0",\n    "httpx>=0.28",'), encoding="utf-8"
    )
    problem = lock.check(pyproject, locked)
    assert problem is not None and "other dependencies" in problem


def test_a_raised_bound_without_a_new_lock_is_refused(tmp_path: Path) -> None:
    pyproject, locked = _copy_project(tmp_path)
    text = pyproject.read_text(encoding="utf-8")
    assert '"ruff>=0.17.6,<0.18"' in text
    pyproject.write_text(text.replace('"ruff>=0.17.6,<0.18"', '"ruff>=0.18,<0.19"'), encoding="utf-8")
    assert lock.check(pyproject, locked) is not None


def test_comments_and_other_tables_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    pyproject, locked = _copy_project(tmp_path)
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        "# a comment\n" + text.replace("line-length = 110", "line-length = 100"), encoding="utf-8"
    )
    assert lock.check(pyproject, locked) is None


def test_a_missing_lock_is_refused(tmp_path: Path) -> None:
    pyproject, locked = _copy_project(tmp_path)
    locked.unlink()
    problem = lock.check(pyproject, locked)
    assert problem is not None and "missing" in problem


def test_the_check_runs_with_the_standard_library_alone() -> None:
    """`make venv` runs it with the bootstrap python before any install (-I -S: no site-packages)."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "scripts/lock.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "fits pyproject.toml" in result.stdout
