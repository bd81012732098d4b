"""The hub a scenario starts for itself: a freshly seeded campus on a temporary database, served by
`onecard-hub serve` in a child process on a simulated clock, stopped with SIGTERM at the end.

The child writes its output to `hub.log` in the scenario's output folder. It is asked for port 0 and
says which port it got ("listening on HOST:PORT"); its Prometheus metrics too ("metrics on URL"), which
`scrape_metrics` saves at the end of the run (`metrics.prom`). With `trace_file` it appends its spans
there (`--trace-file`). With TLS, the PKI (the hub's CA, its server certificate and one certificate
per terminal, operator and the e-card app) is made in `<keys>/pki`.

With `bank=True` the bank simulator (`onecard_sim.bank.running_bank`) runs in this process on its own
database beside the hub's, seeded from the campus's keys folder (an account per card and per canteen
merchant), and the hub is started with `--bank` pointing at it; `bank_target` says where it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from onecard_client.campus import keys_dir_for

__all__ = ["CampusSize", "HubStartError", "LocalHub"]

_LISTENING = re.compile(r"listening on (\S+)")
_METRICS = re.compile(r"metrics on (http://\S+)")
_START_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 30.0


class HubStartError(RuntimeError):
    """The hub could not be seeded or did not start; the message shows the end of its log."""


@dataclass(frozen=True)
class CampusSize:
    schools: int = 2
    students: int = 2000
    gates_per_school: int = 4
    pos_per_school: int = 6


class LocalHub:
    """Seeds a campus and serves it; use `async with LocalHub(...) as hub:` then `hub.target`."""

    def __init__(
        self,
        *,
        size: CampusSize,
        seed: int,
        clock_start: datetime,
        clock_speed: float,
        log_path: Path,
        tls: bool = False,
        bank: bool = False,
        trace_file: Path | None = None,
    ) -> None:
        self.size = size
        self.seed = seed
        self.clock_start = clock_start
        self.clock_speed = clock_speed
        self.log_path = log_path
        self.tls = tls
        self.folder = Path(tempfile.mkdtemp(prefix="onecard-scenario-"))
        self.db = self.folder / "hub.db"
        self.keys = keys_dir_for(self.db)
        self.pki: Path | None = self.keys / "pki" if tls else None
        self.target = ""
        self.metrics_url = ""  # the hub's /metrics (it listens on a free port of 127.0.0.1)
        self.trace_file = trace_file
        self.exit_code: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self.bank = bank
        self.bank_target = ""
        self.bank_sim: Any = None  # the running bank simulator (onecard_sim.bank), when `bank`
        self._bank_stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> LocalHub:
        try:
            await self.seed_campus()
            if self.bank:
                await self.start_bank()
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def seed_campus(self) -> None:
        from onecard_hub.seed import SeedError, SeedOptions, seed_campus

        options = SeedOptions(
            schools=self.size.schools,
            students=self.size.students,
            gates_per_school=self.size.gates_per_school,
            pos_per_school=self.size.pos_per_school,
            seed=self.seed,
        )
        try:
            await seed_campus(self.db, self.keys, options, progress=False)
        except SeedError as exc:
            raise HubStartError(f"cannot seed the campus: {exc}") from exc
        if self.pki is not None:
            await asyncio.to_thread(self._make_pki, self.pki)

    def _make_pki(self, pki: Path) -> None:
        from onecard_hub.security.pki import init_pki, issue_all

        init_pki(pki)
        issue_all(pki, self.keys)

    async def start_bank(self) -> None:
        from onecard_sim.bank import running_bank

        self.bank_sim = await self._bank_stack.enter_async_context(
            running_bank(self.folder / "bank.db", self.keys)
        )
        self.bank_target = self.bank_sim.target

    async def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "onecard_hub.cli",
            "serve",
            "--db",
            str(self.db),
            "--keys",
            str(self.keys),
            "--listen",
            "127.0.0.1:0",
            "--clock-start",
            self.clock_start.isoformat(),
            "--clock-speed",
            repr(self.clock_speed),
            "--log-level",
            "WARNING",
            "--metrics-listen",
            "127.0.0.1:0",
        ]
        if self.trace_file is not None:
            argv += ["--trace-file", str(self.trace_file)]
        if self.pki is not None:
            argv += ["--tls", str(self.pki)]
        if self.bank_target:
            argv += ["--bank", self.bank_target]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # a fresh log: an old "listening on" must not match
            self._process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.target = await self._wait_listening(self._process)

    async def _wait_listening(self, process: asyncio.subprocess.Process) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT_S
        while loop.time() < deadline:
            text = await asyncio.to_thread(self.log_path.read_text, encoding="utf-8", errors="replace")
            found, metrics = _LISTENING.search(text), _METRICS.search(text)
            if found and metrics:  # printed one after the other
                self.metrics_url = metrics.group(1)
                return found.group(1)
            if process.returncode is not None:
                raise HubStartError(f"the hub exited with status {process.returncode}:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        raise HubStartError(f"the hub did not start within {_START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    async def scrape_metrics(self, path: Path) -> Path:
        """Saves what the hub's /metrics answers now (Prometheus text format) in `path`."""

        def scrape() -> None:
            with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:  # the child's, 127.0.0.1
                path.write_bytes(answer.read())

        await asyncio.to_thread(scrape)
        return path

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    async def stop(self) -> int | None:
        """SIGTERM, then wait (SIGKILL after a while); returns the hub's exit code."""
        process, self._process = self._process, None
        if process is None:
            return self.exit_code
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self.exit_code = process.returncode
        return self.exit_code

    async def close(self) -> None:
        await self.stop()
        await self._bank_stack.aclose()
        await asyncio.to_thread(shutil.rmtree, self.folder, True)
