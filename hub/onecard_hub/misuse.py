"""Use case of misuse signals: the card office lists them (AdminService.ListMisuseSignals).

The signals themselves are raised on the tap path (`Campus.authorize`, rules in
`domain/misuse.py`) and journaled with the tap; listing reads memory only.
"""

from __future__ import annotations

from onecard_hub.domain.errors import InvalidArgument
from onecard_hub.domain.misuse import MisuseSignal
from onecard_hub.domain.model import Operator
from onecard_hub.domain.scope import listed_school
from onecard_hub.hub import Hub

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000


def misuse_signals(
    hub: Hub, operator: Operator, school_id: str, since_ms: int, limit: int
) -> list[MisuseSignal]:
    """The signals of a school's cards (every school's for a province administrator naming none),
    newest first. A clerk names their own school."""
    school = listed_school(operator, school_id, hub.campus.schools)
    if not 0 <= limit <= MAX_LIMIT:
        raise InvalidArgument("limit", f"must be within [0, {MAX_LIMIT}]")
    return hub.campus.misuse.listed(school or "", since_ms, limit or DEFAULT_LIMIT)


def holder_name_masked(hub: Hub, signal: MisuseSignal) -> str:
    student = hub.campus.students.get(signal.student_id)
    return student.name_masked if student is not None else ""
