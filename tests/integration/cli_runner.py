"""Runs `onecard` in-process for the CLI tests, in a thread: its blocking client must not stall
the event loop the test hub runs on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from onecard_cli.main import main


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


CLI = Callable[..., Awaitable[Ran]]


def runner(capsys: pytest.CaptureFixture[str]) -> CLI:
    """`await cli(*args, env={...})`: the exit code and what was printed; `env` stands for the
    environment (empty by default, so the machine's ONECARD_* never leak in)."""

    async def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args), env or {})
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run
