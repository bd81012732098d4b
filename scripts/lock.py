"""The lock file: every package the project installs, pinned with its hashes, in `requirements.lock`.

    python scripts/lock.py --check     is the lock made from this pyproject.toml? (standard library only;
                                       `make venv` runs it first, so a stale lock stops every install)
    python scripts/lock.py             refresh the lock for a changed pyproject.toml, keeping every pin that
                                       still fits (`make lock`)
    python scripts/lock.py --upgrade   move every pin to the newest release the bounds allow
                                       (`make lock-upgrade`)

The lock is compiled by `uv pip compile --universal --generate-hashes` from pyproject.toml's dependencies,
its `dev` extra and its build backend (`[build-system] requires`, so the editable install needs nothing
unpinned). It is in pip's requirements format and names no index: `pip install --require-hashes -r
requirements.lock` installs it from whatever registry pip is set up for, and refuses any file whose hash
differs. Its first line is a fingerprint of the inputs it was made from (requires-python, dependencies,
optional dependencies, build requires); `--check` recomputes it, so editing pyproject.toml's dependencies
without `make lock` fails loudly instead of installing something else.

uv itself is pinned in the lock (a dev dependency); when it is missing from the venv this script installs
the locked uv, hashes checked, before compiling.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = REPO_ROOT / "pyproject.toml"
LOCK = REPO_ROOT / "requirements.lock"
FINGERPRINT_PREFIX = "# inputs-sha256: "
# The oldest Python the project supports: the lock is universal, but resolved from this version upwards.
PYTHON_FLOOR = "3.11"
# What hatchling asks for on top of itself to build the editable install (`pip install --no-build-isolation
# -e .`): its get_requires_for_build_editable() for a project whose packages are mapped from other folders.
EDITABLE_BUILD_REQUIRES = ("editables",)


def inputs_fingerprint(pyproject: Path = PYPROJECT) -> str:
    """A hash of what the lock is made from, insensitive to formatting and comments in pyproject.toml."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    inputs = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {
            extra: sorted(reqs) for extra, reqs in sorted(project.get("optional-dependencies", {}).items())
        },
        "build-requires": sorted(data.get("build-system", {}).get("requires", [])),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_fingerprint(lock: Path = LOCK) -> str | None:
    if not lock.is_file():
        return None
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(FINGERPRINT_PREFIX):
            return line.removeprefix(FINGERPRINT_PREFIX).strip()
    return None


def check(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> str | None:
    """Why the lock does not fit pyproject.toml, or None when it does."""
    recorded = recorded_fingerprint(lock)
    if recorded is None:
        return f"{lock.name} is missing or has no '{FINGERPRINT_PREFIX.strip()}' line"
    if recorded != inputs_fingerprint(pyproject):
        return (
            f"{lock.name} was made from other dependencies than pyproject.toml now lists "
            "(requires-python, dependencies, extras or build requires changed)"
        )
    return None


def _locked_block(name: str) -> list[str]:
    """One package's requirement lines (the pin and its --hash continuation lines) from the lock."""
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"{re.escape(name)}==", line):
            block = [line]
            for follow in lines[index + 1 :]:
                if not follow.startswith("    --hash="):
                    break
                block.append(follow)
            return block
    raise SystemExit(f"lock: {name} is not in {LOCK.name}; add it to the dev extra")


def _uv() -> list[str]:
    """The uv of this interpreter's environment, installed from the lock (hash checked) when missing."""
    command = [sys.executable, "-m", "uv"]
    if subprocess.run([*command, "--version"], capture_output=True, check=False).returncode != 0:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pinned:
            pinned.write("\n".join(_locked_block("uv")) + "\n")
        try:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--require-hashes",
                    "--no-deps",
                    "-r",
                    pinned.name,
                ],
                check=True,
            )
        finally:
            os.unlink(pinned.name)
    return command


def compile_lock(upgrade: bool) -> None:
    build_requires = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["build-system"]["requires"]
    with tempfile.TemporaryDirectory(prefix="onecard-lock-") as tmp:
        build_in = Path(tmp) / "build-requires.in"
        build_in.write_text("\n".join([*build_requires, *EDITABLE_BUILD_REQUIRES]) + "\n", encoding="utf-8")
        out = Path(tmp) / LOCK.name
        if LOCK.is_file() and not upgrade:
            out.write_bytes(LOCK.read_bytes())  # uv keeps the pins of an existing output file where they fit
        command = [
            *_uv(),
            "pip",
            "compile",
            "--quiet",
            "--universal",
            "--generate-hashes",
            f"--python-version={PYTHON_FLOOR}",
            "--extra=dev",
            "--annotation-style=line",
            "--custom-compile-command=make lock",
            f"--output-file={out}",
            *(["--upgrade"] if upgrade else []),
            str(PYPROJECT.relative_to(REPO_ROOT)),
            str(build_in),
        ]
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}
        subprocess.run(command, cwd=REPO_ROOT, check=True, env=env)
        body = [
            line
            for line in out.read_text(encoding="utf-8").splitlines()
            if not line.startswith(FINGERPRINT_PREFIX)
        ]
        # The temporary folder's name must not show in the lock's "via" notes.
        text = "\n".join(body).replace(str(build_in), "[build-system] requires") + "\n"
    LOCK.write_text(f"{FINGERPRINT_PREFIX}{inputs_fingerprint()}\n{text}", encoding="utf-8")
    print(f"lock: wrote {LOCK.name} ({sum(1 for line in body if re.match(r'^[A-Za-z0-9]', line))} pins)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="fail when the lock was made from another pyproject.toml"
    )
    mode.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed release")
    args = parser.parse_args(argv)
    if args.check:
        problem = check()
        if problem is not None:
            print(f"lock: {problem}.", file=sys.stderr)
            print("lock: run `make lock` and commit requirements.lock with pyproject.toml.", file=sys.stderr)
            return 1
        print(f"lock: {LOCK.name} fits pyproject.toml")
        return 0
    compile_lock(upgrade=args.upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
