"""Starting and stopping the processes of a load run: the hub, the do-nothing server, Locust.

Each child writes its output to a log file, can be pinned to one CPU with `taskset` (as
`scripts/bench.py` does: server on CPU 0, load generator on CPU 1), gets SIGTERM when this process dies,
and is stopped with SIGTERM (then SIGKILL) by `Children.stop_all`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "CLIENT_CPU",
    "REPO",
    "SERVER_CPU",
    "Children",
    "CpuSample",
    "StartError",
    "cpu_seconds",
    "hub_command",
    "locust_command",
    "machine_busy_seconds",
    "tail",
    "wait_listening",
]

REPO = Path(__file__).resolve().parents[2]  # loadtest/onecard_load/processes.py → the repository
SERVER_CPU = 0
CLIENT_CPU = 1
_LISTENING = re.compile(r"listening on (\S+)")


class StartError(RuntimeError):
    """A child process failed to start or to do its job; the message shows its log."""


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when its parent dies, even by kill -9."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def tail(log: Path, lines: int = 25) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _command_beside(python: str, name: str) -> list[str]:
    script = Path(python).parent / name
    if script.is_file():
        return [python, str(script)]
    found = shutil.which(name)
    if found:
        return [found]
    raise StartError(f"{name} is not installed beside {python}: run `make venv`")


def hub_command(python: str = sys.executable) -> list[str]:
    """`onecard-hub` as installed beside the interpreter, run by that interpreter."""
    return _command_beside(python, "onecard-hub")


def locust_command(python: str = sys.executable) -> list[str]:
    return _command_beside(python, "locust")


class Children:
    """The processes a run started; `stop_all` ends those still running."""

    def __init__(self, pin: bool = False) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []
        self.pin = pin and self.can_pin()

    @staticmethod
    def can_pin() -> bool:
        if shutil.which("taskset") is None:
            return False
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        return {SERVER_CPU, CLIENT_CPU} <= cpus

    def start(
        self, argv: list[str], *, log: Path, cpu: int | None = None, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        if cpu is not None and self.pin:
            argv = ["taskset", "-c", str(cpu), *argv]  # taskset execs: the pid stays the command's
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            out.write(f"$ {shlex.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # Ctrl-C reaches this process only; it stops its children
                preexec_fn=_die_with_parent,  # this process starts no threads
            )
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 15.0) -> int | None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        for proc in list(self._procs):
            self.stop(proc, grace=5.0)


def wait_listening(proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 120.0) -> str:
    """Waits for "listening on HOST:PORT" in the log; returns HOST:PORT."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace").partition("\n")[2]  # after "$ argv"
        found = _LISTENING.search(text)
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise StartError(f"{what} exited with status {proc.returncode} before listening:\n{tail(log)}")
        time.sleep(0.05)
    raise StartError(f"{what} did not say 'listening on' within {timeout:.0f} s:\n{tail(log)}")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU time all CPUs of the machine have spent busy (not idle, not waiting for I/O) since boot."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class CpuSample:
    """CPU used by some processes over a stretch of wall time, as a share of one CPU.

    `shares()` also has "others": what the rest of the machine used meanwhile. Well above a few percent,
    something else was running and the figures are not to be trusted.
    """

    MACHINE = "machine"

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.first: tuple[float, dict[str, float | None]] | None = None
        self.last: tuple[float, dict[str, float | None]] | None = None

    def sample(self) -> None:
        values = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        values[self.MACHINE] = machine_busy_seconds()
        if any(value is None for value in values.values()):
            return  # a process is gone: keep the last complete sample
        now = (time.monotonic(), values)
        if self.first is None:
            self.first = now
        self.last = now

    def shares(self) -> dict[str, float]:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return {}
        wall = self.last[0] - self.first[0]
        shares: dict[str, float] = {}
        for name in (*self.pids, self.MACHINE):
            begin, end = self.first[1][name], self.last[1][name]
            if begin is not None and end is not None:
                shares[name] = (end - begin) / wall
        if self.MACHINE in shares:
            ours = sum(shares.get(name, 0.0) for name in self.pids)
            shares["others"] = max(0.0, shares.pop(self.MACHINE) - ours)
        return {name: round(value, 3) for name, value in shares.items()}
