"""Locust users of the critical path: canteen POS and gate readers tapping cards and scanning e-card codes.

A user plays one terminal of the seeded campus (its id in the `onecard-terminal-id` header and in every
request), taps `--user-rate` times a second, and for each tap takes a card of the terminal's school from
the process's deck (`deck.py`):

- a chip tap (`--chip-share` of the taps) sends the card's next counter value, so counters only move
  forward; an e-card QR scan sends a code minted at send time with the exported e-card keys, with a fresh
  nonce, issued at the hub's time (read once per process with TerminalService.GetClock) — never replayed;
- a canteen purchase is ¥5 to ¥20, below the PIN-free limit; a gate tap is an entry when the card is
  outside and an exit when it is inside, so a hard anti-passback gate has nothing to refuse (a card the
  hub refuses for anti-passback — moved by an earlier run against the same hub — is flipped).

With `--tls DIR` each user speaks mutual TLS and presents the certificate of the terminal it plays
(DIR/terminals/<terminal_id>.crt, made by `onecard-hub pki issue-all`): the hub reads the caller from the
certificate, so a user with another terminal's certificate, or one the hub's CA did not issue, is refused.

Each Locust process uses its own slice of the cards (process i of N takes every N-th card; a worker's i
is its index at the master and N the master's `--expect-workers`, which `--processes N` sets), so chip
counters never collide between processes; counters start from a floor that grows with the wall clock, so
a later run against the same hub starts above every counter an earlier run sent (see `deck.py`).

Statistics (see `grpc_user.py`): an approval is reported as "Authorize <scene>", a decline as its own
entry "Authorize <scene> DECLINED:<REASON>" (a decline is an answer, so it is not a failure), a gRPC error
as a failure of "Authorize <scene>". Scenes: canteen_purchase, gate_entry, gate_exit.

The concrete user classes (with their weights, i.e. the scene mix) are in the locustfiles of `loadtest/`.
"""

from __future__ import annotations

import itertools
import os
import random
import time
import weakref
from typing import ClassVar

import gevent  # type: ignore[import-untyped]  # gevent ships no type hints
from gevent.lock import Semaphore  # type: ignore[import-untyped]
from locust import events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.auth.v1 import authorization_service_pb2_grpc as auth_grpc
from onecard.terminal.v1 import terminal_service_pb2 as term_pb
from onecard.terminal.v1 import terminal_service_pb2_grpc as term_grpc
from onecard_client.campus import CampusCredentials, TerminalInfo
from onecard_client.client import TERMINAL_HEADER
from onecard_client.hub_time import HubTime
from onecard_client.taps import chip_tap, qr_scan
from onecard_load.deck import CardDeck, CardState, atc_floor, card_slice, decks_by_school
from onecard_load.grpc_user import GrpcUser, TlsConfig, UnexpectedAnswer, Verdict
from onecard_load.options import LoadOptions
from onecard_load.warmup import schedule_reset

__all__ = ["CanteenPos", "GateReader", "LoadSetupError", "TapContext", "TapUser"]

AMOUNT_MIN_FEN = 500
AMOUNT_MAX_FEN = 2_000  # below the PIN-free limit that `prepare` seeds (¥50)
SCENE_NAMES = {
    auth_pb.SCENE_CANTEEN_PURCHASE: "canteen_purchase",
    auth_pb.SCENE_GATE_ENTRY: "gate_entry",
    auth_pb.SCENE_GATE_EXIT: "gate_exit",
}


events.test_start.add_listener(schedule_reset)


class LoadSetupError(RuntimeError):
    """The load test cannot start as configured (keys, workers, terminals); the message says why."""


def process_slot(environment: Environment) -> tuple[int, int]:
    """This process's index among the load-generating processes, and their number.

    A worker learns its index from the master (in connection order) and the number of workers from the
    master's `--expect-workers` (`--processes N` sets it to N), so the master must be told how many
    workers there are: card slices are made from that number.
    """
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return 0, 1  # a single process
    count = int(getattr(environment.parsed_options, "expect_workers", 1) or 1)
    index = runner.worker_index
    if not 0 <= index < count:
        raise LoadSetupError(
            f"worker index {index} is not below --expect-workers {count}: start the master with "
            "--expect-workers equal to the number of workers (it is how workers split the cards)"
        )
    return index, count


def classify_authorize(name: str, response: auth_pb.AuthorizeResponse) -> Verdict:
    if response.decision == auth_pb.DECISION_APPROVED:
        return Verdict(name)
    if response.decision == auth_pb.DECISION_DECLINED:
        reason = auth_pb.DeclineReason.Name(response.decline_reason).removeprefix("DECLINE_REASON_")
        return Verdict(f"{name} DECLINED:{reason}")
    return Verdict(name, UnexpectedAnswer(f"decision {response.decision} is neither approved nor declined"))


class TapContext:
    """What the users of one Locust process share: credentials, card decks, terminals, the hub's clock."""

    _contexts: ClassVar[weakref.WeakKeyDictionary[Environment, TapContext]] = weakref.WeakKeyDictionary()

    def __init__(self, credentials: CampusCredentials, options: LoadOptions, slot: tuple[int, int]) -> None:
        index, count = slot
        self.credentials = credentials
        self.options = options
        self.rng = random.Random()
        self.decks = decks_by_school(card_slice(credentials.cards, index, count), self.rng, atc_floor())
        self._terminals: dict[str, itertools.cycle[TerminalInfo]] = {}
        for kind in ("canteen_pos", "gate"):
            usable = sorted(
                (t for t in credentials.terminals if t.kind == kind and t.school_id in self.decks),
                key=lambda t: t.terminal_id,
            )
            if usable:
                self._terminals[kind] = itertools.cycle(usable)
        self._request_prefix = f"lt{index}-{os.getpid():x}{self.rng.getrandbits(24):06x}-"
        self._request_numbers = itertools.count(1)
        self._clock: HubTime | None = None
        self._clock_lock = Semaphore()
        self._tls: dict[str, TlsConfig] = {}

    @classmethod
    def of(cls, environment: Environment, options: LoadOptions) -> TapContext:
        """The process's context, made by its first user (no greenlet switch happens while making it)."""
        context = cls._contexts.get(environment)
        if context is None:
            if not (options.keys / "credentials.json").is_file():
                raise LoadSetupError(
                    f"no credentials export in {options.keys}: run `python -m onecard_load.prepare` "
                    "(or `onecard-hub seed`) and pass its keys folder with --keys"
                )
            context = cls(CampusCredentials.load(options.keys), options, process_slot(environment))
            cls._contexts[environment] = context
        return context

    def next_terminal(self, kind: str) -> TerminalInfo:
        terminals = self._terminals.get(kind)
        if terminals is None:
            raise LoadSetupError(f"the credentials export has no {kind} terminal of a school with cards")
        return next(terminals)

    def tls_of(self, terminal_id: str) -> TlsConfig | None:
        """Mutual TLS as terminal `terminal_id` with `--tls DIR`'s PKI (read once per terminal); None
        without `--tls`."""
        pki = self.options.tls
        if pki is None:
            return None
        config = self._tls.get(terminal_id)
        if config is None:
            try:
                config = self._tls[terminal_id] = TlsConfig.of_terminal(pki, terminal_id)
            except FileNotFoundError as exc:
                raise LoadSetupError(str(exc)) from None
        return config

    def new_request_id(self) -> str:
        return f"{self._request_prefix}{next(self._request_numbers)}"

    def hub_time(self, user: TapUser) -> HubTime | None:
        """The hub's clock, read once per process through `user`'s channel; None if the call failed."""
        with self._clock_lock:  # the first user asks; the others wait for its answer
            if self._clock is None:
                stub = term_grpc.TerminalServiceStub(user.channel)
                sent_ms = time.time_ns() / 1e6
                answer = user.call(
                    "GetClock", stub.GetClock, term_pb.GetClockRequest(terminal_id=user.terminal.terminal_id)
                )
                if answer is None:
                    return None
                midpoint_ms = int((sent_ms + time.time_ns() / 1e6) / 2)
                self._clock = HubTime(answer.now.ToMilliseconds(), midpoint_ms, answer.speed or 1.0)
            return self._clock


class TapUser(GrpcUser):
    """One terminal tapping cards of its school; subclasses say which kind of terminal and what a tap is."""

    abstract = True
    terminal_kind: ClassVar[str] = ""

    def on_start(self) -> None:
        options = LoadOptions.of(self.environment)
        self.options = options
        self.call_timeout = options.call_timeout
        self.shared = TapContext.of(self.environment, options)
        self.terminal = self.shared.next_terminal(self.terminal_kind)
        self.metadata = ((TERMINAL_HEADER, self.terminal.terminal_id),)
        self.deck: CardDeck = self.shared.decks[self.terminal.school_id]
        self.auth = auth_grpc.AuthorizationServiceStub(self.channel)
        self.interval = 1.0 / options.user_rate if options.user_rate > 0 else 0.0
        clock = self.shared.hub_time(self)
        if clock is None:
            raise LoadSetupError("TerminalService.GetClock failed: cannot mint codes in the hub's time")
        self.clock = clock
        # Start at a random point of the period, so that users spawned together do not tap in lockstep.
        gevent.sleep(random.random() * self.interval)
        self._last_start = time.perf_counter()

    def tls_config(self) -> TlsConfig | None:
        """With `--tls DIR`: the certificate of the terminal this user plays (its identity at the hub)."""
        return self.shared.tls_of(self.terminal.terminal_id)

    def wait_time(self) -> float:
        """Paces the user to `--user-rate` taps a second, whatever the latency (below the period)."""
        if self.interval <= 0:
            return 0.0
        now = time.perf_counter()
        self._last_start = max(self._last_start + self.interval, now - self.interval)
        return max(0.0, self._last_start - now)

    def authorize(
        self, state: CardState, scene: auth_pb.Scene.ValueType, amount_fen: int = 0
    ) -> auth_pb.AuthorizeResponse | None:
        """Sends one tap or scan of `state`'s card; returns the answer, None when there was none."""
        card = state.card
        now_ms = self.clock.now_ms()
        request_id = self.shared.new_request_id()
        terminal_id = self.terminal.terminal_id
        if random.random() < self.options.chip_share:
            request = chip_tap(
                card,
                request_id=request_id,
                terminal_id=terminal_id,
                scene=scene,
                atc=state.next_atc(),
                tap_time_ms=now_ms,
                amount_fen=amount_fen,
            )
        else:
            request = qr_scan(
                self.shared.credentials,
                card,
                request_id=request_id,
                terminal_id=terminal_id,
                scene=scene,
                issued_ms=now_ms,
                tap_time_ms=now_ms,
                amount_fen=amount_fen,
            )
        name = f"Authorize {SCENE_NAMES[scene]}"
        return self.call(name, self.auth.Authorize, request, classify=classify_authorize)


class CanteenPos(TapUser):
    """A canteen window's POS: wallet payments of ¥5 to ¥20."""

    abstract = True
    terminal_kind = "canteen_pos"

    @task
    def pay(self) -> None:
        state = self.deck.take()
        response = self.authorize(
            state, auth_pb.SCENE_CANTEEN_PURCHASE, random.randint(AMOUNT_MIN_FEN, AMOUNT_MAX_FEN)
        )
        if response is None:
            self.deck.retire(state)
        else:
            self.deck.give_back(state)


class GateReader(TapUser):
    """A campus gate's reader: entries and exits, each card alternating."""

    abstract = True
    terminal_kind = "gate"

    @task
    def pass_gate(self) -> None:
        state = self.deck.take()
        scene = auth_pb.SCENE_GATE_EXIT if state.inside else auth_pb.SCENE_GATE_ENTRY
        response = self.authorize(state, scene)
        if response is None:
            self.deck.retire(state)
            return
        # Approved: the card went through. Refused for anti-passback: the hub already had it on that side
        # (an earlier run against the same hub moved it), so either way it is now where this tap went.
        if (
            response.decision == auth_pb.DECISION_APPROVED
            or response.decline_reason == auth_pb.DECLINE_REASON_ANTI_PASSBACK
        ):
            state.inside = scene == auth_pb.SCENE_GATE_ENTRY
        self.deck.give_back(state)
