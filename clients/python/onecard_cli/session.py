"""What every command shares: how to reach the hub as an operator, and how to print an answer.

People get rich tables; `--json` prints the answer as one JSON object (proto field names) for
scripts. Mutating commands carry a request_id (made here unless `--request-id` gives one) and
print it, so the same command can be repeated safely with the same id.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console

from onecard_client import ClientConfig, TLSConfig

DEFAULT_HUB = "127.0.0.1:50051"
C = TypeVar("C", bound="_Closable")


class _Closable(Protocol):
    def close(self) -> None: ...


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


def _console() -> Console:
    """Standard output for people; piped or redirected, wide enough that tables are not squeezed."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def new_request_id() -> str:
    return f"cli-{uuid.uuid4().hex}"


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


@dataclass
class Session:
    """One run of `onecard`: the operator's client config, the output, the clients opened."""

    operator: str
    config: ClientConfig
    json: bool
    out: Console = field(default_factory=lambda: _console())
    _clients: ExitStack = field(default_factory=ExitStack)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Session:
        if not args.operator:
            raise UsageError("--operator ID is required (or ONECARD_OPERATOR)")
        tls = None
        if args.tls:
            folder = Path(args.tls)
            if not folder.is_dir():
                raise UsageError(f"--tls {args.tls}: not a folder")
            tls = TLSConfig.for_operator(folder, args.operator, server_name=args.server_name)
        config = ClientConfig(target=args.hub, deadline_s=args.deadline, tls=tls)
        return cls(args.operator, config, args.json)

    def client(self, kind: Callable[[str, ClientConfig], C]) -> C:
        """A sync SDK client of `kind` for this operator, closed when the run ends."""
        made = kind(self.operator, self.config)
        self._clients.callback(made.close)
        return made

    def close(self) -> None:
        self._clients.close()

    # -- output --------------------------------------------------------------------

    def emit(
        self,
        message: Message,
        show: Callable[[Console, Any], None],
        *,
        request_id: str = "",
    ) -> None:
        """Prints an answer: `show` draws it for people, or it is printed as JSON."""
        if self.json:
            doc = as_dict(message)
            if request_id:
                doc = {"request_id": request_id, **doc}
            self.print_json(doc)
            return
        show(self.out, message)
        if request_id:
            self.out.print(f"[dim]request_id {request_id}[/dim]")

    def print_json(self, doc: Any) -> None:
        self.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()


def mutating(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--request-id",
        default="",
        help="the idempotency key (default: a new one, printed); repeat it to repeat a call safely",
    )
    return parser


def request_id_of(args: argparse.Namespace) -> str:
    return str(args.request_id) or new_request_id()


def secret(args: argparse.Namespace, label: str, env_name: str) -> str:
    """A PIN or an ID number: never a command-line argument (shell history, `ps`). From the
    environment variable `env_name`, else a hidden prompt, else a line of standard input."""
    value = str(args.environ.get(env_name, ""))
    if value:
        return value
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"{label}: ")
    try:
        line = sys.stdin.readline() if sys.stdin is not None else ""
    except OSError:
        line = ""
    if not line.strip():
        raise UsageError(f"{label}: set {env_name} or give it on standard input")
    return line.strip()


def yuan(fen: int) -> str:
    """Fen as yuan for people, "-12.05" (integer arithmetic: money is never a float)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"
