"""protos/CONTRACT.md is what scripts/gen_contract_docs.py makes today, and the generator refuses notes
that do not fit the protos."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard_hub.domain.decisions import DISPLAY_TEXT, DeclineReason

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "gen_contract_docs.py"
CONTRACT = REPO_ROOT / "protos" / "CONTRACT.md"


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_contract_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def descriptors(gen: ModuleType) -> list[Any]:
    return list(gen.load_descriptors())


def notes() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "protos" / "contract_notes.toml").read_text(encoding="utf-8"))


def test_contract_md_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"stale protos/CONTRACT.md (run `make contract-docs`):\n{result.stderr}"


def test_every_rpc_and_decline_text_is_documented(descriptors: list[Any]) -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    for file in descriptors:
        for service in file.service:
            for method in service.method:
                assert f"#### {service.name}.{method.name}\n" in text
    for reason in auth_pb.DeclineReason.values():
        if reason == 0:
            continue
        name = auth_pb.DeclineReason.Name(reason)
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.rstrip().endswith(f"| {DISPLAY_TEXT[DeclineReason(reason)]} |")


def test_a_method_without_notes_is_refused(gen: ModuleType, descriptors: list[Any]) -> None:
    doc = notes()
    del doc["rpcs"]["onecard.auth.v1.AuthorizationService.Refund"]
    with pytest.raises(
        gen.ContractError, match=re.escape("no notes for RPC onecard.auth.v1.AuthorizationService.Refund")
    ):
        gen.Contract(descriptors, doc)


def test_an_error_reason_with_the_wrong_status_code_is_refused(
    gen: ModuleType, descriptors: list[Any]
) -> None:
    doc = notes()
    doc["rpcs"]["onecard.auth.v1.AuthorizationService.Refund"]["errors"] = [
        {"code": "INVALID_ARGUMENT", "reason": "NOT_FOUND", "when": "never"}
    ]
    with pytest.raises(gen.ContractError, match="NOT_FOUND comes with NOT_FOUND, not INVALID_ARGUMENT"):
        gen.Contract(descriptors, doc)


def test_an_unknown_error_reason_is_refused(gen: ModuleType, descriptors: list[Any]) -> None:
    doc = notes()
    doc["services"]["onecard.admin.v1.AdminService"]["errors"].append(
        {"code": "NOT_FOUND", "reason": "NO_SUCH_REASON", "when": "never"}
    )
    with pytest.raises(gen.ContractError, match="NO_SUCH_REASON is not an ErrorReason"):
        gen.Contract(descriptors, doc)


def test_a_description_that_matches_nothing_is_refused(gen: ModuleType, descriptors: list[Any]) -> None:
    doc = notes()
    doc["descriptions"]["onecard.auth.v1.ChipTap.no_such_field"] = "stale"
    contract = gen.Contract(descriptors, doc)
    with pytest.raises(gen.ContractError, match="no_such_field"):
        gen.render(contract, dict(DISPLAY_TEXT), DeclineReason)
