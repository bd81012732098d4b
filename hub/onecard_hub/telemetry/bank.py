"""Every call of the bank gateway counted, timed and traced: a wrapper around its BankService stub
(`BankGateway.observe`), so the gateway's own code stays as it is.

Outcome (the label `outcome` of `onecard_bank_calls_total`): for a money call or an inquiry, the
transfer's status the bank answered (`posted`, `rejected`, `reversed`, `not_found`, `returned`);
`ok` for any other answer; for no answer, `invalid` (INVALID_ARGUMENT: refused as malformed),
`not_found` (NOT_FOUND) or `uncertain` (anything else: UNAVAILABLE, DEADLINE_EXCEEDED, … — the bank
may have applied it). The bank gateway error rate is the share of `uncertain`.

With tracing on, each call is a CLIENT span `onecard.bank.v1.BankService/<Method>` under whatever
span is current (a top-up's TopUp call, a grant payer's batch, …), and its W3C trace context goes
to the bank in the call's metadata.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import propagate, trace

from onecard.bank.v1 import bank_service_pb2 as pb

if TYPE_CHECKING:
    from onecard_hub.telemetry.metrics import HubMetrics

SERVICE = pb.DESCRIPTOR.services_by_name["BankService"].full_name


def outcome_of_answer(answer: Any) -> str:
    status = getattr(answer, "status", None)
    if isinstance(status, int) and status:
        return pb.TransferStatus.Name(status).removeprefix("TRANSFER_STATUS_").lower()  # type: ignore[arg-type]
    return "ok"


def outcome_of_error(error: grpc.RpcError) -> str:
    code = error.code() if isinstance(error, grpc.aio.AioRpcError | grpc.Call) else None
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return "invalid"
    if code == grpc.StatusCode.NOT_FOUND:
        return "not_found"
    return "uncertain"


class ObservedBankStub:
    """Stands in for `BankServiceStub`: the same methods, each call counted, timed and traced."""

    def __init__(self, stub: Any, metrics: HubMetrics | None, tracer: trace.Tracer | None) -> None:
        self._stub = stub
        self._metrics = metrics
        self._tracer = tracer
        self._methods: dict[str, _ObservedMethod] = {}

    def __getattr__(self, name: str) -> _ObservedMethod:
        method = self._methods.get(name)
        if method is None:
            method = self._methods[name] = _ObservedMethod(getattr(self._stub, name), name, self)
        return method


class _ObservedMethod:
    def __init__(self, call: Any, name: str, owner: ObservedBankStub) -> None:
        self._call = call
        self._name = name
        self._owner = owner
        self._span_name = f"{SERVICE}/{name}"

    async def __call__(self, request: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the stub's)
        owner = self._owner
        bank = getattr(request, "bank_code", "")
        span = None
        metadata: list[tuple[str, str]] | None = None
        if owner._tracer is not None:
            attributes = {"rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": self._name}
            span = owner._tracer.start_span(
                self._span_name, kind=trace.SpanKind.CLIENT, attributes=attributes
            )
            span.set_attribute("onecard.bank", bank)
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span))
            metadata = list(carrier.items())
        start = perf_counter()
        code = grpc.StatusCode.OK
        try:
            answer = await self._call(request, timeout=timeout, metadata=metadata)
        except grpc.RpcError as error:
            outcome = outcome_of_error(error)
            found = error.code() if isinstance(error, grpc.aio.AioRpcError | grpc.Call) else None
            code = found if isinstance(found, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            raise
        except BaseException:
            outcome, code = "uncertain", grpc.StatusCode.CANCELLED
            raise
        else:
            outcome = outcome_of_answer(answer)
            return answer
        finally:
            elapsed = perf_counter() - start
            metrics = owner._metrics
            if metrics is not None:
                metrics.bank_calls.labels(bank, self._name, outcome).inc()
                metrics.bank_seconds.labels(bank, self._name).observe(elapsed)
            if span is not None:
                span.set_attribute("onecard.bank.outcome", outcome)
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code is not grpc.StatusCode.OK:  # a client span: every status but OK is an error
                    span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
                span.end()
