"""`report.json` (DESIGN §10) and the summary printed at the end of a run.

The report holds exactly the keys of DESIGN §10 that apply to every scenario; `REPORT_KEYS` lists them
in order and a unit test locks the shape. A scenario with an episode adds its own section after
`ledger` (`lost_cards`, `exam`, `library`, and `bank` where the bank simulator takes part).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["REPORT_KEYS", "Report", "print_summary", "write_report"]

REPORT_KEYS = (
    "scenario",
    "seed",
    "duration_s",
    "simulated_s",
    "taps",
    "decisions",
    "latency_ms",
    "offline",
    "ledger",
    "approvals_after_loss",
    "violations",
)
OFFLINE_KEYS = ("uploaded", "reuploaded", "duplicates_applied")
LEDGER_KEYS = ("sum_fen", "conserved")


@dataclass
class Report:
    scenario: str
    seed: int
    duration_s: float
    simulated_s: float
    taps: Mapping[str, int] = field(default_factory=dict)
    decisions: Mapping[str, int] = field(default_factory=dict)
    latency_ms: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    uploaded: int = 0
    reuploaded: int = 0
    duplicates_applied: int = 0
    ledger_sum_fen: int = 0
    # The bank half of `ledger.conserved` (DESIGN §10): the simulator's accounts changed by exactly the
    # hub's bank clearing flows. True where no bank took part.
    bank_conserved: bool = True
    approvals_after_loss: int = 0
    violations: list[str] = field(default_factory=list)
    # Scenario-specific sections, placed after `ledger` ("lost_cards", "exam", "library").
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def conserved(self) -> bool:
        return self.ledger_sum_fen == 0 and self.bank_conserved

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """The report as DESIGN §10 shapes it: counts as integers, keys in order."""
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "duration_s": round(float(self.duration_s), 3),
            "simulated_s": round(float(self.simulated_s), 1),
            "taps": {scene: int(n) for scene, n in sorted(self.taps.items())},
            "decisions": {
                name: int(n) for name, n in sorted(self.decisions.items(), key=lambda kv: (-kv[1], kv[0]))
            },
            "latency_ms": {
                scene: {"p50": float(v["p50"]), "p99": float(v["p99"])}
                for scene, v in sorted(self.latency_ms.items())
            },
            "offline": {
                "uploaded": int(self.uploaded),
                "reuploaded": int(self.reuploaded),
                "duplicates_applied": int(self.duplicates_applied),
            },
            "ledger": {"sum_fen": int(self.ledger_sum_fen), "conserved": self.conserved},
            **{name: dict(section) for name, section in self.sections.items()},
            "approvals_after_loss": int(self.approvals_after_loss),
            "violations": list(self.violations),
        }


def write_report(report: Report, folder: Path) -> Path:
    path = folder / "report.json"
    path.write_text(json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def print_summary(report: Report, console: Console, files: Mapping[str, Path]) -> None:
    """A readable summary: taps and latency per scene, decisions, offline, ledger, violations."""
    doc = report.to_json()
    scenes = Table(title=f"scenario {report.scenario} (seed {report.seed})", title_justify="left")
    scenes.add_column("scene")
    scenes.add_column("taps", justify="right")
    scenes.add_column("p50 ms", justify="right")
    scenes.add_column("p99 ms", justify="right")
    for scene, count in doc["taps"].items():
        latency = doc["latency_ms"].get(scene, {})
        scenes.add_row(scene, f"{count:,}", _ms(latency.get("p50")), _ms(latency.get("p99")))
    console.print(scenes)

    decisions = Table(title="decisions", title_justify="left")
    decisions.add_column("outcome")
    decisions.add_column("count", justify="right")
    for name, count in doc["decisions"].items():
        style = "red" if name.startswith("ERROR_") else ("green" if "APPROVED" in name else "")
        decisions.add_row(f"[{style}]{name}[/]" if style else name, f"{count:,}")
    console.print(decisions)

    offline, ledger = doc["offline"], doc["ledger"]
    console.print(
        f"{report.duration_s:.1f} s real for {report.simulated_s / 60:.0f} min simulated · "
        f"offline: {offline['uploaded']} uploaded, {offline['reuploaded']} re-uploaded, "
        f"{offline['duplicates_applied']} booked twice · ledger sum {ledger['sum_fen']} fen "
        f"({'conserved' if ledger['conserved'] else 'NOT CONSERVED'})"
    )
    for name, section in doc.items():
        if name in report.sections:
            console.print(f"{name}: " + _fields(section), highlight=False)
    for what, path in files.items():
        console.print(f"{what}: {path}")
    if report.violations:
        console.print(f"[bold red]{len(report.violations)} violation(s):[/]")
        for line in report.violations:
            console.print(f"  [red]✗[/] {escape(line)}", highlight=False)
    else:
        console.print("[bold green]every invariant held[/]")


def _fields(section: Mapping[str, Any]) -> str:
    parts = []
    for key, value in section.items():
        if isinstance(value, Mapping):
            inner = ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
            parts.append(f"{key.replace('_', ' ')} ({inner})")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return " · ".join(parts)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
