"""The command-line options the OneCard locustfiles add to Locust's own, read into one frozen object.

Locust sends custom options from the master to its workers, so `--keys`, `--peak-rate` and the others are
given once, to the master (or to the single process). The keys folder must exist at that path on every
machine that runs a worker.
"""

from __future__ import annotations

from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment

__all__ = ["DEFAULT_KEYS", "LoadOptions"]

DEFAULT_KEYS = "loadtest/data/hub.keys"  # where `python -m onecard_load.prepare` writes by default


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:  # a LocustArgumentParser: it takes include_in_web_ui
    group = parser.add_argument_group("OneCard load test")
    group.add_argument(
        "--keys",
        default=DEFAULT_KEYS,
        help="credentials export written by `onecard-hub seed` (hub.db → hub.keys/) [%(default)s]",
    )
    group.add_argument(
        "--peak-rate", type=float, default=200.0, help="load shapes: taps/s at the peak [%(default)s]"
    )
    group.add_argument(
        "--shape-seconds", type=float, default=120.0, help="load shapes: length of the rush, s [%(default)s]"
    )
    group.add_argument(
        "--user-rate",
        type=float,
        default=10.0,
        help="taps/s of one user (a terminal); 0 = no pause between taps (closed loop) [%(default)s]",
    )
    group.add_argument(
        "--chip-share",
        type=float,
        default=0.5,
        help="share of chip taps; the rest are e-card QR scans [%(default)s]",
    )
    group.add_argument(
        "--call-timeout", type=float, default=2.0, help="deadline of each call, s [%(default)s]"
    )
    group.add_argument(
        "--tls",
        default="",
        metavar="DIR",
        help="mutual TLS with the PKI in DIR (`onecard-hub pki`, the hub's `serve --tls DIR`): the hub's "
        "CA in DIR/ca.crt, each user presents the certificate of the terminal it plays, "
        "DIR/terminals/<terminal_id>.crt and .key; empty = plain text [%(default)s]",
    )
    group.add_argument(
        "--warmup-seconds",
        type=float,
        default=0.0,
        help="reset the statistics this long after the test starts, leaving connection set-up and the "
        "first taps out of the figures; 0 keeps everything [%(default)s]",
    )


@dataclass(frozen=True)
class LoadOptions:
    keys: Path
    peak_rate: float
    shape_seconds: float
    user_rate: float
    chip_share: float
    call_timeout: float
    warmup_seconds: float = 0.0
    tls: Path | None = None  # the PKI folder; None = plain text

    @classmethod
    def of(cls, environment: Environment) -> LoadOptions:
        return cls.from_namespace(environment.parsed_options)

    @classmethod
    def from_namespace(cls, options: Namespace | None) -> LoadOptions:
        if options is None:  # Locust used as a library, without its command line
            options = Namespace()
        # Values typed in the web UI arrive as text: convert them here, once.
        made = cls(
            keys=Path(getattr(options, "keys", DEFAULT_KEYS)),
            peak_rate=float(getattr(options, "peak_rate", 200.0)),
            shape_seconds=float(getattr(options, "shape_seconds", 120.0)),
            user_rate=float(getattr(options, "user_rate", 10.0)),
            chip_share=float(getattr(options, "chip_share", 0.5)),
            call_timeout=float(getattr(options, "call_timeout", 2.0)),
            warmup_seconds=float(getattr(options, "warmup_seconds", 0.0)),
            tls=Path(tls) if (tls := str(getattr(options, "tls", "") or "")) else None,
        )
        made.check()
        return made

    def check(self) -> None:
        problems = [
            text
            for bad, text in (
                (self.peak_rate <= 0, "--peak-rate must be positive"),
                (self.shape_seconds <= 0, "--shape-seconds must be positive"),
                (self.user_rate < 0, "--user-rate must not be negative"),
                (not 0.0 <= self.chip_share <= 1.0, "--chip-share must be within [0, 1]"),
                (self.call_timeout <= 0, "--call-timeout must be positive"),
                (self.warmup_seconds < 0, "--warmup-seconds must not be negative"),
                (
                    self.tls is not None and not (self.tls / "ca.crt").is_file(),
                    f"--tls {self.tls}: no ca.crt there (make the PKI with `onecard-hub pki init`)",
                ),
            )
            if bad
        ]
        if problems:
            raise ValueError("; ".join(problems))
