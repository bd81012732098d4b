"""Regenerates every Python stub beside its .proto under protos/onecard/.

    python scripts/gen_protos.py           write *_pb2.py, *_pb2.pyi, *_pb2_grpc.py, *_pb2_grpc.pyi
    python scripts/gen_protos.py --check   generate into a temporary folder and compare byte for byte;
                                           exit 1 listing stale, missing and orphaned stubs

This is the one way stubs are made (STYLE.md, convention 5). It runs

    python -m grpc_tools.protoc -Iprotos --python_out=protos --grpc_python_out=protos
        --mypy_out=protos --mypy_grpc_out=protos <every protos/onecard/**/*.proto>

with the interpreter that runs this script, and points protoc at the mypy-protobuf plugins installed
beside that interpreter, so it works from `.venv/bin/python` without an activated venv.

The output depends on the versions of grpcio-tools and mypy-protobuf (their version numbers are written
into the stubs); pyproject.toml keeps both within one minor series so `--check` stays meaningful.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "protos"
PACKAGE_DIR = PROTO_ROOT / "onecard"
STUB_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
PLUGINS = ("protoc-gen-mypy", "protoc-gen-mypy_grpc")


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


def check() -> list[str]:
    """Problems with the committed stubs, one line each; empty when they are up to date."""
    with tempfile.TemporaryDirectory(prefix="onecard-stubs-") as tmp:
        fresh_root = Path(tmp)
        generate(fresh_root)
        fresh = _stubs_under(fresh_root)
        committed = _stubs_under(PROTO_ROOT)
        problems = [f"missing: protos/{rel}" for rel in sorted(fresh - committed)]
        problems += [
            f"stale:   protos/{rel}"
            for rel in sorted(fresh & committed)
            if (fresh_root / rel).read_bytes() != (PROTO_ROOT / rel).read_bytes()
        ]
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
