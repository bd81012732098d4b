"""The Node.js example terminal (clients/node) against a real hub: `npm ci`, then `node tap.js` in plain
text and over mutual TLS. It must print APPROVED for a usable card, a decline with the hub's screen text
for a lost card, and the ErrorInfo reason and field of a broken call (exit 1)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from onecard_client.campus import CampusCredentials, CardCredential
from onecard_client.credentials import chip_cryptogram, derive_card_key
from onecard_hub.domain.clock import ManualClock
from onecard_hub.security.pki import init_pki, issue, issue_all
from onecard_hub.server import RunningHub, running_hub
from tests.conftest import hub_config

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
RUN_TIMEOUT_S = 60


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def field(self, key: str) -> str:
        """The value of a `key: value` line of the example's output."""
        for line in (self.out + self.err).splitlines():
            if line.startswith(f"{key}: "):
                return line.removeprefix(f"{key}: ")
        raise AssertionError(f"no {key!r} line in:\n{self.out}{self.err}")


@pytest.fixture(scope="module")
def node_example() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not on PATH: the Node.js example cannot run here")
    # Only the npm registry is reached; --ignore-scripts: no package needs its install script here.
    result = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"npm ci failed:\n{result.stdout}\n{result.stderr}"
    return NODE_DIR


async def tap(node_dir: Path, keys: Path, *args: str) -> Run:
    process = await asyncio.create_subprocess_exec(
        "node",
        "tap.js",
        "--keys",
        str(keys),
        *args,
        cwd=node_dir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def first_pos_card(creds: CampusCredentials, status: str) -> CardCredential:
    """A card of the school of the example's default terminal (the export's first canteen POS)."""
    school = next(t.school_id for t in creds.terminals if t.kind == "canteen_pos")
    return next(c for c in creds.cards_of(school) if c.status == status and c.enrollment == "enrolled")


async def test_plain_text_tap_is_approved_and_a_lost_card_declined(
    node_example: Path, hub: RunningHub, campus_dir: Path, creds: CampusCredentials
) -> None:
    keys = campus_dir / "hub.keys"
    approved = await tap(node_example, keys, "--plaintext", "--target", hub.target)
    assert approved.code == 0, approved.err
    assert approved.field("mode").startswith("PLAIN TEXT")
    assert approved.field("decision") == "APPROVED"
    assert approved.field("decline_reason") == "-"
    assert approved.field("display_text") == "通过"
    assert "*" in approved.field("holder")
    assert approved.field("hub clock").startswith("2026-11-24T12:00")

    lost = first_pos_card(creds, "lost")
    declined = await tap(node_example, keys, "--plaintext", "--target", hub.target, "--card", lost.card_no)
    assert declined.code == 0, declined.err  # a decline is an answer, not an error
    assert declined.field("decision") == "DECLINED"
    assert declined.field("decline_reason") == "CARD_REPORTED_LOST"
    assert declined.field("display_text") == "卡已挂失"


async def test_a_broken_call_prints_its_error_info_and_exits_1(
    node_example: Path, hub: RunningHub, campus_dir: Path
) -> None:
    run = await tap(
        node_example, campus_dir / "hub.keys", "--plaintext", "--target", hub.target, "--amount", "0"
    )
    assert run.code == 1
    assert run.field("error").startswith("INVALID_ARGUMENT (code 3)")
    assert run.field("error_reason") == "FIELD_INVALID"
    assert run.field("error_field") == "amount_fen"
    assert "decision" not in run.out


async def test_replaying_the_chip_counter_is_declined(
    node_example: Path, hub: RunningHub, campus_dir: Path, creds: CampusCredentials
) -> None:
    keys = campus_dir / "hub.keys"
    card = first_pos_card(creds, "active")
    args = ("--plaintext", "--target", hub.target, "--card", card.card_no, "--atc", str(card.atc + 5))
    assert (await tap(node_example, keys, *args)).field("decision") == "APPROVED"
    again = await tap(node_example, keys, *args)
    assert again.field("decline_reason") == "COUNTER_REPLAYED"


async def test_mutual_tls_tap_is_approved_and_a_foreign_ca_fails_the_handshake(
    node_example: Path, campus_dir: Path, clock: ManualClock, tmp_path: Path
) -> None:
    keys = campus_dir / "hub.keys"
    pki = keys / "pki"
    init_pki(pki)
    issue_all(pki, keys)
    async with running_hub(hub_config(campus_dir, tls_dir=pki), clock) as tls_hub:
        assert tls_hub.tls
        approved = await tap(node_example, keys, "--pki", str(pki), "--target", tls_hub.target)
        assert approved.code == 0, approved.err
        assert approved.field("mode").startswith("mutual TLS")
        assert approved.field("decision") == "APPROVED"

        terminal = next(
            t.terminal_id for t in CampusCredentials.load(keys).terminals if t.kind == "canteen_pos"
        )
        foreign = tmp_path / "foreign-pki"
        init_pki(foreign)
        issue(foreign, "terminal", terminal)
        refused = await tap(node_example, keys, "--pki", str(foreign), "--target", tls_hub.target)
        assert refused.code == 1
        assert refused.field("error").startswith("UNAVAILABLE")
        assert refused.field("hint").startswith("no answer from the hub")


CRYPTOGRAM_CASES = [  # master key byte, card_no, atc, terminal_id, scene, amount_fen, tap_time_ms
    (1, "R63935045", 1, "jx-ts-01-pos-01", 3, 1200, 1_795_492_800_000),
    (2, "R000000001", 4_294_967_295, "jx-ts-02-gate-04", 1, 0, 1_795_492_800_999),
    (3, "A1B2C3D4E5F6G7H8I9J0", 77, "t.1_x:y-z", 2, 0, 1),
    (4, "123456", 9, "pos", 3, 1_000_000, 2_000_000_000_000),
]


def test_the_node_credential_port_matches_the_python_specification(node_example: Path) -> None:
    """The Node.js card key and cryptogram agree with onecard_client.credentials on varied inputs;
    `npm test` (the example's own vectors) passes too."""
    script = (
        "const {chipCryptogram, deriveCardKey} = require('./lib/credentials');"
        "const cases = JSON.parse(process.argv[1]);"
        "for (const [m, cardNo, atc, terminalId, scene, amountFen, tapTimeMs] of cases) {"
        "  const key = deriveCardKey(Buffer.alloc(32, m), cardNo);"
        "  const cryptogram = chipCryptogram(key, {cardNo, atc, terminalId, scene, amountFen, tapTimeMs});"
        "  console.log(key.toString('hex'), cryptogram.toString('hex'));"
        "}"
    )
    node = subprocess.run(
        ["node", "-e", script, json.dumps(CRYPTOGRAM_CASES)],
        cwd=node_example,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=True,
    )
    expected = []
    for m, card_no, atc, terminal_id, scene, amount_fen, tap_time_ms in CRYPTOGRAM_CASES:
        key = derive_card_key(bytes([m]) * 32, card_no)
        cryptogram = chip_cryptogram(
            key,
            card_no=card_no,
            atc=atc,
            terminal_id=terminal_id,
            scene=scene,
            amount_fen=amount_fen,
            tap_time_ms=tap_time_ms,
        )
        expected.append(f"{key.hex()} {cryptogram.hex()}")
    assert node.stdout.splitlines() == expected

    own = subprocess.run(
        ["npm", "test"], cwd=node_example, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert own.returncode == 0, own.stdout + own.stderr
