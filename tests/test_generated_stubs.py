"""The committed protobuf and gRPC stubs are exactly what scripts/gen_protos.py generates today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_generated_stubs_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"stale or missing stubs (run `make protos`):\n{result.stderr}"


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
