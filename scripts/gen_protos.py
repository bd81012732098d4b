"""Regenerates every Python stub beside its .proto under protos/onecard/.

    python scripts/gen_protos.py           write *_pb2.py, *_pb2.pyi, *_pb2_grpc.py, *_pb2_grpc.pyi
    python scripts/gen_protos.py --check   generate into a temporary folder and compare what matters;
                                           exit 1 listing stale, missing, orphaned and too-new stubs

This is the one way stubs are made (STYLE.md, convention 5). It runs

    python -m grpc_tools.protoc -Iprotos --python_out=protos --grpc_python_out=protos
        --mypy_out=protos --mypy_grpc_out=protos <every protos/onecard/**/*.proto>

with the interpreter that runs this script, and points protoc at the mypy-protobuf plugins installed
beside that interpreter, so it works from `.venv/bin/python` without an activated venv.

What `--check` compares. The generators stamp their own release into the stubs: `GRPC_GENERATED_VERSION`
in every *_pb2_grpc.py and the protobuf gencode version in every *_pb2.py. Those stamps are masked before
comparing, so a stub counts as stale only when its code differs; a different patch release of a generator
alone does not make it stale. What the stamps mean is checked instead: each is the oldest runtime the stub
imports under, so it must not be newer than the floor pyproject.toml promises (`grpcio>=…`, `protobuf>=…`,
same major), or a vendor on that floor could not import the stubs. The generators are pinned in
requirements.lock, and with those pins `make protos` rewrites every stub byte for byte
(tests/test_generated_stubs.py holds both).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
PACKAGE_DIR = PROTO_ROOT / "onecard"
STUB_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
PLUGINS = ("protoc-gen-mypy", "protoc-gen-mypy_grpc")

# The generators' own releases, as they stamp them into the stubs (group "version").
GRPC_STAMP = re.compile(r"^GRPC_GENERATED_VERSION = '(?P<version>[^']+)'$", re.MULTILINE)
PROTOBUF_STAMP = re.compile(
    r"^# Protobuf Python Version: (?P<version>\S+)$"
    r"|^_runtime_version\.ValidateProtobufRuntimeVersion\(\n\s*_runtime_version\.Domain\.PUBLIC,\n"
    r"\s*(?P<major>\d+),\n\s*(?P<minor>\d+),\n\s*(?P<patch>\d+),\n\s*'(?P<suffix>[^']*)',",
    re.MULTILINE,
)


def proto_files() -> list[Path]:
    """Every .proto of the contract, relative to protos/, in a stable order."""
    return sorted(path.relative_to(PROTO_ROOT) for path in PACKAGE_DIR.rglob("*.proto"))


def _plugin_path(name: str) -> str:
    scripts_dir = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts_dir / name, Path(sys.executable).parent / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"gen_protos: {name} not found; install the dev extras: pip install -e '.[dev]'")
    return found


def generate(out_dir: Path) -> None:
    """Runs protoc over every .proto, writing stubs under out_dir (mirroring protos/)."""
    protos = proto_files()
    if not protos:
        raise SystemExit(f"gen_protos: no .proto files under {PACKAGE_DIR}")
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"--plugin={name}={_plugin_path(name)}" for name in PLUGINS),
        f"-I{PROTO_ROOT}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(PROTO_ROOT / proto) for proto in protos),
    ]
    # mypy-protobuf chats on stderr ("Writing mypy to ..."): show protoc's output only when it fails.
    result = subprocess.run(command, cwd=REPO_ROOT, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"gen_protos: protoc failed with exit code {result.returncode}")


def _stubs_under(root: Path) -> set[Path]:
    return {
        path.relative_to(root)
        for path in (root / "onecard").rglob("*")
        if path.is_file() and path.name.endswith(STUB_SUFFIXES)
    }


def without_stamps(text: str) -> str:
    """A stub's text with the generators' release stamps masked: what `--check` compares."""
    text = GRPC_STAMP.sub("GRPC_GENERATED_VERSION = '*'", text)
    return PROTOBUF_STAMP.sub("<protobuf gencode version>", text)


def stamped_versions(text: str) -> dict[str, Version]:
    """The runtime releases a stub's stamps ask for: {"grpcio": …} and/or {"protobuf": …}."""
    found: dict[str, Version] = {}
    if grpc := GRPC_STAMP.search(text):
        found["grpcio"] = Version(grpc["version"])
    for match in PROTOBUF_STAMP.finditer(text):
        if match["major"] is not None:
            found["protobuf"] = Version(
                f"{match['major']}.{match['minor']}.{match['patch']}{match['suffix']}"
            )
    return found


def runtime_floors(pyproject: Path = REPO_ROOT / "pyproject.toml") -> dict[str, Version]:
    """The lowest grpcio and protobuf releases pyproject.toml accepts (their `>=` bounds)."""
    floors: dict[str, Version] = {}
    for line in tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]:
        requirement = Requirement(line)
        if requirement.name in ("grpcio", "protobuf"):
            lower = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
            if lower:
                floors[requirement.name] = max(lower)
    return floors


def stamp_problems(rel: Path, text: str, floors: dict[str, Version]) -> list[str]:
    """Stamps that would keep a runtime on pyproject.toml's floor from importing the stub."""
    problems = []
    for package, wanted in stamped_versions(text).items():
        floor = floors.get(package)
        if floor is None:
            problems.append(f"floor:   protos/{rel} needs {package}>={wanted}; pyproject.toml sets no floor")
        elif wanted > floor or (package == "protobuf" and wanted.major != floor.major):
            problems.append(
                f"too new: protos/{rel} needs {package}>={wanted}, "
                f"but pyproject.toml allows {package}>={floor}"
            )
    return problems


def check() -> list[str]:
    """Problems with the committed stubs, one line each; empty when they are up to date."""
    floors = runtime_floors()
    with tempfile.TemporaryDirectory(prefix="onecard-stubs-") as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = _stubs_under(fresh_root)
        committed = _stubs_under(PROTO_ROOT)
        problems = [f"missing: protos/{rel}" for rel in sorted(fresh - committed)]
        for rel in sorted(fresh & committed):
            text = (PROTO_ROOT / rel).read_text(encoding="utf-8")
            if without_stamps((fresh_root / rel).read_text(encoding="utf-8")) != without_stamps(text):
                problems.append(f"stale:   protos/{rel}")
            problems += stamp_problems(rel, text, floors)
        problems += [f"orphan:  protos/{rel} (no .proto generates it)" for rel in sorted(committed - fresh)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="compare committed stubs with fresh ones; write nothing"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = check()
        if problems:
            print("gen_protos: generated stubs are out of date; run `make protos`:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"gen_protos: {len(_stubs_under(PROTO_ROOT))} stubs up to date")
        return 0
    with tempfile.TemporaryDirectory(prefix="onecard-stubs-") as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)  # a protoc failure leaves the committed stubs untouched
        for rel in _stubs_under(PROTO_ROOT):
            (PROTO_ROOT / rel).unlink()
        for rel in _stubs_under(fresh_root):
            shutil.copyfile(fresh_root / rel, PROTO_ROOT / rel)
    print(f"gen_protos: wrote {len(_stubs_under(PROTO_ROOT))} stubs from {len(proto_files())} protos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
