"""Plays one scenario: a hub (its own, or `--hub`), a simulated campus, the traffic, the faults, then
the report, the chart and the summary (DESIGN §10).

    options = RunOptions(spec=lookup("meal-rush"), duration_s=15, seed=7, out=Path("out"))
    report = await run_scenario(options, Console())

Its own hub runs on a simulated clock that starts a little *before* the scenario's stretch (so that
starting the hub and the terminals does not eat into it); the traffic starts when the hub's clock
reaches the stretch, and lasts `duration_s` real seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from onecard.admin.v1 import admin_service_pb2 as admin_pb
from onecard_client import AdminClient, ClientConfig, TLSConfig
from onecard_client.campus import CampusCredentials
from onecard_client.hub_time import HubTime
from onecard_sim.driver import DriverStats, OpenLoopDriver
from onecard_sim.pos import CanteenFleet
from onecard_sim.scenarios.catalog import ScenarioSpec
from onecard_sim.scenarios.chart import write_chart
from onecard_sim.scenarios.collector import Collector
from onecard_sim.scenarios.devices import CampusDevices, build_devices, offline_fault, settle_offline
from onecard_sim.scenarios.episode import Episode, EpisodeResult
from onecard_sim.scenarios.episodes import build_episodes
from onecard_sim.scenarios.invariants import CardFacts, LedgerTotals, RunFacts, check
from onecard_sim.scenarios.live import LiveProgress
from onecard_sim.scenarios.local_hub import CampusSize, LocalHub
from onecard_sim.scenarios.report import Report, print_summary, write_report
from onecard_sim.scenarios.traffic import plan_traffic

__all__ = ["RunOptions", "ScenarioError", "run_scenario"]

LEAD_S = 3.0  # real seconds the hub's clock runs before the stretch starts (hub and terminals start)
MAX_IN_FLIGHT = 128


@dataclass(frozen=True)
class RunOptions:
    spec: ScenarioSpec
    duration_s: float
    seed: int
    out: Path
    size: CampusSize = field(default_factory=CampusSize)
    hub: str = ""  # HOST:PORT of a running hub; empty: start one
    keys: Path | None = None  # the running hub's keys folder (credentials export, pki/)
    tls: bool = False
    live: bool = True  # live progress when the console is a terminal
    trace: bool = False  # its own hub writes its spans to OUT/traces-hub.jsonl (--trace)


class ScenarioError(RuntimeError):
    """The scenario cannot be played on this campus (e.g. it has none of the terminals it needs)."""


@dataclass
class _Hub:
    target: str
    keys: Path
    pki: Path | None
    local: LocalHub | None = None


async def run_scenario(options: RunOptions, console: Console) -> Report:
    """Runs the scenario and writes report.json and chart.png into `options.out` (and metrics.prom,
    what its own hub's /metrics said at the end); returns the report."""
    spec = options.spec
    options.out.mkdir(parents=True, exist_ok=True)
    if not options.hub:
        size = options.size
        console.print(
            f"seeding {size.students:,} students in {size.schools} school(s) (seed {options.seed})"
            f"{' and a PKI' if options.tls else ''}, starting the hub …",
            highlight=False,
        )
    async with _hub(options) as hub:
        campus = await asyncio.to_thread(CampusCredentials.load, hub.keys)
        fleets = build_devices(
            spec,
            campus,
            target=hub.target,
            keys=hub.keys,
            pki=hub.pki,
            seed=options.seed,
            fresh_hub=hub.local is not None,
        )
        if not fleets.all:
            await fleets.stop()
            raise ScenarioError(f"the campus has no terminal that scenario {spec.name} uses")
        episodes = build_episodes(
            spec,
            fleets,
            campus,
            target=hub.target,
            pki=hub.pki,
            seed=options.seed,
            bank=hub.local.bank_sim if hub.local is not None else None,
        )
        try:
            await fleets.start()
            async with _admin(hub, campus) as admin:
                hub_time = fleets.hub_time
                _print_setup(options, hub, fleets, hub_time, console)
                planned_ms = int(spec.start_at.timestamp() * 1000) if hub.local else hub_time.now_ms()
                for episode in episodes:
                    await episode.prepare(planned_ms)
                start_ms = await _wait_for_stretch(options, hub, hub_time, console)
                speed = hub_time.speed
                simulated_s = options.duration_s * speed
                collector = Collector(start_ms, simulated_s)
                fleets.sink.target = collector  # from now on every event counts
                fleets.sink.watchers = [episode.watch for episode in episodes]
                before = _totals(await admin.ledger_summary())
                plan = plan_traffic(
                    spec,
                    fleets.population,
                    gates=fleets.gates,
                    canteens=fleets.canteens,
                    start_ms=start_ms,
                    simulated_s=simulated_s,
                    duration_s=options.duration_s,
                )
                for episode in episodes:
                    streams, expected = episode.streams(start_ms, simulated_s, options.duration_s)
                    plan.streams.extend(streams)
                    plan.expected.update(expected)
                driver = OpenLoopDriver(hub_time, max_in_flight=MAX_IN_FLIGHT)
                faults = offline_fault(spec.offline, fleets.canteens, options.duration_s, options.seed)
                title = f"{spec.name} → {hub.target}" + (" (mTLS)" if hub.pki else " (plain text)")
                live = LiveProgress(collector, hub_time, options.duration_s, title, console)
                with live.showing(options.live):
                    fault_task = asyncio.create_task(faults) if faults is not None else None
                    plays = [asyncio.create_task(e.play(options.duration_s)) for e in episodes]
                    stats = await driver.run(plan.streams, options.duration_s, options.seed)
                    if fault_task is not None:
                        await fault_task
                    await asyncio.gather(*plays)
                await settle_offline(fleets.canteens)
                if spec.offline is not None and spec.offline.reupload_all and fleets.canteens is not None:
                    # Every batch, including any uploaded late (a tap in flight when the POS came back),
                    # is sent once more: the hub must book none of it again.
                    await fleets.canteens.reupload_all()
                after = _totals(await admin.ledger_summary())
                for episode in episodes:
                    await episode.finish()
        finally:
            await asyncio.gather(*(e.close() for e in episodes), return_exceptions=True)
            await fleets.stop()
        metrics = await _scrape_metrics(hub, options.out, console)
        hub_exit = await hub.local.stop() if hub.local is not None else 0

    facts = _facts(spec, collector, campus, before, after, fleets.canteens)
    violations = check(facts)
    results = _results(episodes)
    for result in results:
        violations.extend(result.violations)
    if hub_exit not in (0, None):
        violations.append(f"the hub exited with status {hub_exit} when asked to stop (SIGTERM)")
    if stats.errors:
        violations.append(f"{stats.errors} simulated arrival(s) failed inside the simulator (a bug)")
    report = Report(
        scenario=spec.name,
        seed=options.seed,
        duration_s=options.duration_s,
        simulated_s=simulated_s,
        taps=dict(collector.taps),
        decisions=dict(collector.decisions),
        latency_ms=collector.latency_summary(),
        uploaded=collector.uploads.uploaded,
        reuploaded=collector.uploads.reuploaded,
        duplicates_applied=collector.uploads.duplicates_applied,
        ledger_sum_fen=after.sum_fen,
        bank_conserved=all(r.conserved for r in results),
        approvals_after_loss=sum(r.approvals_after_loss for r in results),
        violations=violations,
        sections={r.section: r.data for r in results if r.section},
    )
    files = {
        "report": write_report(report, options.out),
        "chart": await asyncio.to_thread(
            write_chart,
            collector,
            options.out / "chart.png",
            title=f"{spec.name} · seed {options.seed} · {options.duration_s:g} s real",
            speed=speed,
        ),
    }
    if metrics is not None:
        files["metrics"] = metrics
    if hub.local is not None:
        files["hub log"] = hub.local.log_path
        if hub.local.trace_file is not None:
            files["hub traces"] = hub.local.trace_file
    _print_driver_notes(stats, plan.expected, console)
    print_summary(report, console, files)
    return report


# -- the hub ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _hub(options: RunOptions) -> AsyncIterator[_Hub]:
    if options.hub:
        if options.spec.bank is not None:
            raise ScenarioError(
                f"{options.spec.name} starts its own hub and bank simulator (the hub's --bank): drop --hub"
            )
        if options.keys is None:
            raise ValueError("--hub needs --keys (the keys folder of the hub's campus)")
        pki = options.keys / "pki" if options.tls else None
        yield _Hub(options.hub, options.keys, pki)
        return
    spec = options.spec
    speed = spec.clock_speed(options.duration_s)
    local = LocalHub(
        size=options.size,
        seed=options.seed,
        clock_start=spec.start_at - timedelta(seconds=LEAD_S * speed),
        clock_speed=speed,
        log_path=options.out / "hub.log",
        tls=options.tls,
        bank=spec.bank is not None,
        trace_file=options.out / "traces-hub.jsonl" if options.trace else None,
    )
    async with local:
        yield _Hub(local.target, local.keys, local.pki, local)


async def _scrape_metrics(hub: _Hub, out: Path, console: Console) -> Path | None:
    """Its own hub's /metrics once every call is answered, in OUT/metrics.prom (Prometheus text
    format): `onecard_authorizations_total` adds up to the report's taps and decisions."""
    if hub.local is None:
        return None
    try:
        return await hub.local.scrape_metrics(out / "metrics.prom")
    except OSError as exc:
        console.print(f"[yellow]note:[/] the hub's /metrics could not be read: {exc}", highlight=False)
        return None


def _config(hub: _Hub, tls: TLSConfig | None) -> ClientConfig:
    return ClientConfig(target=hub.target, tls=tls)


@contextlib.asynccontextmanager
async def _admin(hub: _Hub, campus: CampusCredentials) -> AsyncIterator[AdminClient]:
    """An operator's client for the ledger summary: the province administrator when there is one."""
    operators = campus.operators
    operator = "province-admin" if "province-admin" in operators else operators[0]
    tls = TLSConfig.for_operator(hub.pki, operator) if hub.pki else None
    async with AdminClient(operator, _config(hub, tls)) as admin:
        yield admin


async def _wait_for_stretch(options: RunOptions, hub: _Hub, hub_time: HubTime, console: Console) -> int:
    """Waits until the hub's clock reaches the stretch (own hub); returns the stretch's start, hub ms."""
    now = hub_time.now_ms()
    if hub.local is None:
        return now  # a running hub: play whatever time it shows
    start_ms = int(options.spec.start_at.timestamp() * 1000)
    wait_s = (start_ms - now) / 1000 / hub_time.speed
    if wait_s > 0:
        await asyncio.sleep(wait_s)
    elif wait_s < -0.5:
        console.print(f"[yellow]note:[/] the hub started late; the stretch begins {-wait_s:.1f} s late")
    return start_ms


# -- facts and notes -------------------------------------------------------------------------------


def _results(episodes: list[Episode]) -> list[EpisodeResult]:
    return [episode.result() for episode in episodes]


def _totals(summary: admin_pb.GetLedgerSummaryResponse) -> LedgerTotals:
    return LedgerTotals(summary.sum_fen, {t.kind: t.balance_fen for t in summary.totals})


def _facts(
    spec: ScenarioSpec,
    collector: Collector,
    campus: CampusCredentials,
    before: LedgerTotals,
    after: LedgerTotals,
    canteens: CanteenFleet | None,
) -> RunFacts:
    uploads = collector.uploads
    return RunFacts(
        decisions=collector.decisions,
        ledger_before=before,
        ledger_after=after,
        cards={c.card_no: CardFacts(c.status, c.enrollment) for c in campus.cards},
        approvals=collector.approved_cards,
        offline_approvals=collector.offline_approved_cards,
        expected_errors=spec.expected_errors,
        offline_stored=collector.offline_stored,
        uploaded=uploads.uploaded,
        booked=uploads.booked,
        rejected=uploads.rejected,
        duplicates=uploads.duplicates,
        reuploaded=uploads.reuploaded,
        duplicates_applied=uploads.duplicates_applied,
        device_net_purchases_fen=_device_net(collector, canteens),
        bank_flows=spec.bank is not None,
    )


def _device_net(collector: Collector, canteens: CanteenFleet | None) -> int | None:
    """Approved purchases − refunds as the POS saw them; None when some outcome is unknown to them."""
    if canteens is None:
        return 0
    counters = canteens.counters()
    uncertain = (
        any(name.startswith("ERROR_") for name in collector.decisions)
        or collector.uploads.rejected
        or counters["refund_errors"]
        or counters["reversals"]
        or counters["reversal_errors"]
    )
    if uncertain:
        return None
    return counters["approved_fen"] + counters["offline_fen"] - counters["refunded_fen"]


def _print_setup(
    options: RunOptions, hub: _Hub, fleets: CampusDevices, hub_time: HubTime, console: Console
) -> None:
    spec = options.spec
    devices = ", ".join(f"{len(fleet.terminals)} {fleet.label}" for fleet in fleets.all)
    stretch = f"{spec.start}–{spec.end}" if hub.local is not None else "from the hub's time"
    console.print(
        f"[bold]{spec.name}[/]: {spec.summary}\n"
        f"hub {hub.target} ({'mutual TLS' if hub.pki else 'plain text'}"
        f"{', started here' if hub.local is not None else ''}); simulated {stretch} at ×{hub_time.speed:g} "
        f"in {options.duration_s:g} s; {len(fleets.population.students):,} students, {devices}",
        highlight=False,
    )


def _print_driver_notes(stats: DriverStats, expected: dict[str, int], console: Console) -> None:
    planned = ", ".join(f"{name} ≈{count}" for name, count in expected.items()) or "nothing"
    console.print(
        f"arrivals planned {planned}; scheduled {stats.scheduled}, dropped {stats.dropped} "
        f"(backlog full), late starts {stats.late_starts}",
        highlight=False,
    )
