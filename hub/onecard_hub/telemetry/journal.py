"""What the journal writer tells telemetry (store/writer.py's `JournalTelemetry` protocol).

Per group commit (not per call): its duration and rows (`onecard_journal_commit_seconds`,
`onecard_journal_batch_rows`) and, with tracing on, a `journal commit` span under the span of every
call whose rows it carried, from the commit's start to its end, with `onecard.journal.batch_rows`.
A commit is shared by many calls and a span has one parent, so each call gets its own child span
of the same commit. Only with tracing on does a submission cost anything (the caller's span is
remembered).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from opentelemetry import trace

if TYPE_CHECKING:
    from onecard_hub.telemetry.metrics import HubMetrics


class JournalTelemetry:
    def __init__(self, metrics: HubMetrics | None, tracer: trace.Tracer | None) -> None:
        self._metrics = metrics
        self._tracer = tracer
        self.tracing = tracer is not None  # the writer calls `submitted` only when True

    def submitted(self, callers: list[object]) -> None:
        """A call queued rows for the pending commit: remember its span, when one is recorded."""
        span = trace.get_current_span()
        if span.is_recording():
            callers.append(span)

    def committed(self, rows: int, seconds: float, callers: list[object]) -> None:
        """A commit of `rows` rows took `seconds`; `callers`: what `submitted` remembered for it."""
        metrics = self._metrics
        if metrics is not None:
            metrics.commit_seconds.observe(seconds)
            metrics.batch_rows.observe(rows)
        tracer = self._tracer
        if tracer is None or not callers:
            return
        end = time.time_ns()
        start = end - int(seconds * 1e9)
        attributes: dict[str, str | int] = {"db.system.name": "sqlite", "onecard.journal.batch_rows": rows}
        for caller in callers:
            assert isinstance(caller, trace.Span)
            span = tracer.start_span(
                "journal commit",
                context=trace.set_span_in_context(caller),
                start_time=start,
                attributes=attributes,
            )
            span.end(end_time=end)
