"""`onecard`: parses the command line, runs one command, maps the outcome to an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from onecard_cli import cards, funds, grants, money, reconcile, report, scenes, students, terminals
from onecard_cli.session import DEFAULT_HUB, Session, UsageError
from onecard_client.errors import OneCardError, TLSConfigurationError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
GROUPS = (report, terminals, money, cards, students, scenes, grants, reconcile, funds)

Command = Callable[[argparse.Namespace, Session], int]


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `main` stays callable in-process."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def parser(environ: dict[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if environ is None else environ
    top = _Parser(
        prog="onecard",
        description="OneCard Hub's admin command line (card office and province).",
        epilog="Exit codes: 0 ok, 1 refused by the hub (its code, reason and field are printed), 2 usage.",
    )
    top.add_argument("--hub", default=env.get("ONECARD_HUB", DEFAULT_HUB), help="HOST:PORT (env ONECARD_HUB)")
    top.add_argument(
        "--operator", default=env.get("ONECARD_OPERATOR", ""), help="operator id (env ONECARD_OPERATOR)"
    )
    top.add_argument(
        "--tls",
        default=env.get("ONECARD_TLS_DIR", ""),
        metavar="DIR",
        help="the hub's PKI folder: mutual TLS with operators/<operator>.crt (env ONECARD_TLS_DIR)",
    )
    top.add_argument("--server-name", default="localhost", help="the name the hub's certificate carries")
    top.add_argument("--deadline", type=float, default=10.0, metavar="SECONDS", help="per call")
    top.add_argument("--json", action="store_true", help="machine-readable output")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for group in GROUPS:
        group.register(commands)
    return top


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    try:
        args = parser(environ).parse_args(argv)
        args.environ = dict(os.environ) if environ is None else environ
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if hasattr(args, "run_without_hub"):  # commands that never call the hub
        return int(args.run_without_hub(args))
    run: Command = args.run
    try:
        session = Session.from_args(args)
    except UsageError as exc:
        print(f"onecard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(args, session)
    except UsageError as exc:
        print(f"onecard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TLSConfigurationError as exc:
        _refused(session, exc)
        return EXIT_USAGE
    except OneCardError as exc:
        _refused(session, exc)
        return EXIT_REFUSED
    finally:
        session.close()


def _refused(session: Session, exc: OneCardError) -> None:
    """The hub's typed error: code, reason and field, for people on stderr or as JSON on stdout."""
    doc = {"code": exc.code.name, "reason": exc.reason, "field": exc.field, "message": exc.message}
    if exc.correlation_id:
        doc["correlation_id"] = exc.correlation_id
    if session.json:
        session.print_json({"error": doc})
    parts = [doc["code"]] + [f"{k}={doc[k]}" for k in ("reason", "field", "correlation_id") if doc.get(k)]
    print(f"onecard: refused: {' '.join(parts)}: {exc.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
