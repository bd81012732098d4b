"""The committed protobuf and gRPC stubs are what scripts/gen_protos.py generates today: the same code
(whatever patch release of the generators made them), stamps that pyproject.toml's runtime floors can import,
and, with the generators requirements.lock pins, the same bytes."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.version import Version

from scripts import gen_protos

REPO_ROOT = Path(__file__).resolve().parent.parent
AUTH_GRPC = Path("onecard/auth/v1/authorization_service_pb2_grpc.py")
AUTH_PB2 = Path("onecard/auth/v1/authorization_service_pb2.py")


def _locked_version(package: str) -> str:
    text = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.MULTILINE)
    assert match is not None, f"{package} is not pinned in requirements.lock"
    return match[1]


def test_generated_stubs_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"stale or missing stubs (run `make protos`):\n{result.stderr}"


def test_the_locked_generators_rewrite_every_stub_byte_for_byte(tmp_path: Path) -> None:
    for package in ("grpcio-tools", "mypy-protobuf"):
        assert metadata.version(package) == _locked_version(package), (
            f"{package} {metadata.version(package)} is installed, the lock pins {_locked_version(package)}: "
            "install with `make venv`"
        )
    gen_protos.generate(tmp_path)
    fresh = sorted(path.relative_to(tmp_path) for path in (tmp_path / "onecard").rglob("*") if path.is_file())
    assert fresh, "protoc wrote no stubs"
    differing = [
        str(rel)
        for rel in fresh
        if (tmp_path / rel).read_bytes() != (gen_protos.PROTO_ROOT / rel).read_bytes()
    ]
    assert differing == []


def test_another_patch_release_of_the_generator_is_not_a_stale_stub() -> None:
    text = (gen_protos.PROTO_ROOT / AUTH_GRPC).read_text(encoding="utf-8")
    restamped = re.sub(r"GRPC_GENERATED_VERSION = '[^']+'", "GRPC_GENERATED_VERSION = '1.85.9'", text)
    assert restamped != text
    assert gen_protos.without_stamps(restamped) == gen_protos.without_stamps(text)

    pb2 = (gen_protos.PROTO_ROOT / AUTH_PB2).read_text(encoding="utf-8")
    other_protoc = re.sub(r"(# Protobuf Python Version: )\S+", r"\g<1>7.35.9", pb2)
    other_protoc = re.sub(r"(Domain\.PUBLIC,\n\s*7,\n\s*35,\n\s*)\d+", r"\g<1>9", other_protoc)
    assert other_protoc != pb2
    assert gen_protos.without_stamps(other_protoc) == gen_protos.without_stamps(pb2)


def test_a_change_of_code_is_a_stale_stub() -> None:
    text = (gen_protos.PROTO_ROOT / AUTH_GRPC).read_text(encoding="utf-8")
    changed = text.replace("class AuthorizationServiceStub", "class AuthorisationServiceStub")
    assert gen_protos.without_stamps(changed) != gen_protos.without_stamps(text)


def test_the_committed_stamps_read_as_the_runtime_they_need() -> None:
    grpc_stub = (gen_protos.PROTO_ROOT / AUTH_GRPC).read_text(encoding="utf-8")
    pb2 = (gen_protos.PROTO_ROOT / AUTH_PB2).read_text(encoding="utf-8")
    assert set(gen_protos.stamped_versions(grpc_stub)) == {"grpcio"}
    protobuf = gen_protos.stamped_versions(pb2)["protobuf"]
    comment = re.search(r"# Protobuf Python Version: (\S+)", pb2)
    assert comment is not None and protobuf == Version(comment[1])


def test_a_stamp_newer_than_the_runtime_floor_is_reported() -> None:
    floors = {"grpcio": Version("1.85.3"), "protobuf": Version("7.36.2")}
    text = (gen_protos.PROTO_ROOT / AUTH_GRPC).read_text(encoding="utf-8")
    assert gen_protos.stamp_problems(AUTH_GRPC, text, floors) == []
    too_new = re.sub(r"GRPC_GENERATED_VERSION = '[^']+'", "GRPC_GENERATED_VERSION = '1.85.4'", text)
    [problem] = gen_protos.stamp_problems(AUTH_GRPC, too_new, floors)
    assert "needs grpcio>=1.85.4" in problem and "grpcio>=1.85.3" in problem

    pb2 = (gen_protos.PROTO_ROOT / AUTH_PB2).read_text(encoding="utf-8")
    assert gen_protos.stamp_problems(AUTH_PB2, pb2, floors) == []
    other_major = gen_protos.stamp_problems(
        AUTH_PB2, pb2, {"grpcio": floors["grpcio"], "protobuf": Version("8.0.0")}
    )
    assert len(other_major) == 1 and "protobuf" in other_major[0]


def test_the_runtime_floors_come_from_pyproject() -> None:
    floors = gen_protos.runtime_floors()
    assert set(floors) == {"grpcio", "protobuf"}
    assert floors["protobuf"].major == 7


def test_generated_stubs_import() -> None:
    from onecard.admin.v1 import admin_service_pb2_grpc
    from onecard.auth.v1 import authorization_service_pb2, authorization_service_pb2_grpc
    from onecard.common.v1 import errors_pb2
    from onecard.terminal.v1 import terminal_service_pb2_grpc

    assert authorization_service_pb2_grpc.AuthorizationServiceStub is not None
    assert admin_service_pb2_grpc.AdminServiceStub is not None
    assert terminal_service_pb2_grpc.TerminalServiceStub is not None
    assert authorization_service_pb2.DESCRIPTOR.package == "onecard.auth.v1"
    assert errors_pb2.ErrorReason.Value("ERROR_REASON_UNSPECIFIED") == 0
