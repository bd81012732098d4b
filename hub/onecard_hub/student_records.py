"""Use cases of student records (学籍): enroll, status changes, transfer, roster import.

Each mutating call follows the hub's pattern: idempotent by (operator, request_id); everything is
checked before anything in memory changes (no await in between, so calls never interleave); the
change, its audit entry and the request row go to the writer as one batch, durable before the
answer. A status change takes effect on the student's next tap (`campus.holder_refusal`).
Rules live in `domain/enrollment.py` (the transition table) and `domain/roster_csv.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from google.protobuf.message import Message

from onecard_hub.domain.audit import details
from onecard_hub.domain.clock import to_cst
from onecard_hub.domain.enrollment import Action, NewStudent, Problem, next_status
from onecard_hub.domain.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from onecard_hub.domain.ledger import Account, AccountKind
from onecard_hub.domain.model import Enrollment, Operator, Student, Wallet
from onecard_hub.domain.pii import mask_id_number, mask_name
from onecard_hub.domain.roster_csv import RosterRow
from onecard_hub.hub import Hub
from onecard_hub.once import run_once
from onecard_hub.security.protect import FieldProtector
from onecard_hub.store.records import AccountRow, AuditRow, Batch, RequestRow, StudentRow, StudentStatusRow

M = TypeVar("M", bound=Message)
ID_CONTEXT = b"id_number"  # the AEAD context of students' ID numbers (as seed.py writes them)

ACTION_NAMES = {
    Action.SUSPEND: "SuspendStudent",
    Action.RESUME: "ResumeStudent",
    Action.GRADUATE: "GraduateStudent",
    Action.WITHDRAW: "WithdrawStudent",
    Action.TRANSFER: "TransferStudent",
}


@dataclass(frozen=True, slots=True)
class RowResult:
    """One roster row's outcome: ENROLLED / EXISTING / REJECTED (numbers of onecard.records.v1.RowOutcome)."""

    line: int
    student_id: str
    outcome: int
    problem: int = 0
    message: str = ""


ENROLLED, EXISTING, REJECTED = 1, 2, 3


async def idempotent(
    hub: Hub,
    operator: Operator,
    request_id: str,
    method: str,
    fingerprint: bytes,
    parse: Callable[[bytes], M],
    decide: Callable[[int], tuple[M, Batch]],
) -> M:
    """The operator-call pattern (`once.run_once`, keyed by (operator, request_id)): replay a known
    request, else decide (which checks everything, then changes memory and returns the response and
    its rows) and commit."""
    key = (operator.operator_id, request_id)

    def act(now: int) -> tuple[M, Batch, RequestRow]:
        response, rows = decide(now)
        return response, rows, RequestRow(key[0], key[1], method, b"", b"", now)

    return await run_once(hub, key, method, fingerprint, parse, act)


# -- scope -------------------------------------------------------------------------


def check_school(hub: Hub, operator: Operator, school_id: str, field: str = "school_id") -> None:
    """The school exists and the operator may act on it (a clerk: only their own)."""
    if not school_id:
        raise InvalidArgument(field, "required")
    if operator.school_id and operator.school_id != school_id:
        raise PermissionDenied(f"{field}: another school than the operator's")
    if school_id not in hub.campus.schools:
        raise NotFound(f"{field}: no such school", field=field)


def schools_in_scope(hub: Hub, operator: Operator, school_id: str) -> set[str] | None:
    """The schools a report or run covers: `school_id` (checked), else the clerk's own school, else
    (a province administrator) every school: None."""
    if school_id:
        check_school(hub, operator, school_id)
        return {school_id}
    return {operator.school_id} if operator.school_id else None


def student_of(hub: Hub, operator: Operator, student_id: str) -> Student:
    """The student if the operator may see them; else NOT_FOUND or PERMISSION_DENIED (another school)."""
    student = hub.campus.students.get(student_id)
    if student is None:
        raise NotFound("student_id: no such student", field="student_id")
    if operator.school_id and operator.school_id != student.school_id:
        raise PermissionDenied("student_id: a student of another school")
    return student


def card_nos_of(hub: Hub, student: Student) -> list[str]:
    return sorted(c.card_no for c in hub.campus.cards_of(student))


def today(hub: Hub) -> date:
    return to_cst(hub.clock.now_ms()).date()


# -- enrollment --------------------------------------------------------------------


def _audit(
    operator: Operator, now: int, request_id: str, student: Student, action: str, text: str
) -> AuditRow:
    return AuditRow(
        now,
        "operator",
        operator.operator_id,
        student.school_id,
        student.student_id,
        "",
        action,
        request_id,
        text,
    )


def _admit(
    hub: Hub, protector: FieldProtector, school_id: str, new: NewStudent, now: int
) -> tuple[Student, Batch]:
    """Adds a checked, unknown student to memory with a new wallet account; the rows that persist them."""
    ledger = hub.campus.ledger
    account = ledger.add(Account(max(ledger.accounts, default=0) + 1, AccountKind.WALLET, new.student_id))
    index, masked = protector.index(new.id_number), mask_id_number(new.id_number)
    student = Student(
        student_id=new.student_id,
        school_id=school_id,
        name_masked=mask_name(new.name),
        group=new.group,
        enrollment=Enrollment.ENROLLED,
        wallet=Wallet(account),
        birth_date=new.birth_date.isoformat(),
        id_index=index,
        id_masked=masked,
    )
    hub.campus.students[student.student_id] = student
    rows = Batch(
        accounts=[AccountRow(account.account_id, account.kind.value, account.owner, 0)],
        students=[
            StudentRow(
                student_id=new.student_id,
                school_id=school_id,
                name=new.name,
                id_number_enc=protector.encrypt(new.id_number, context=ID_CONTEXT),
                id_number_index=index,
                id_number_masked=masked,
                birth_date=student.birth_date,
                student_group=new.group.value,
                enrollment=Enrollment.ENROLLED.value,
                wallet_account_id=account.account_id,
            )
        ],
    )
    return student, rows


class KnownIdNumbers:
    """The students (at any school) by the keyed index of their ID number, as of now: those in memory
    (enrolled but not written yet included) in a map, the others by the students table's unique
    index when asked — not a map of every student, which would build them all (campus_loader.py)."""

    def __init__(self, hub: Hub) -> None:
        self._loader = hub.campus_loader
        held = hub.campus.students.values() if self._loader is None else self._loader.students.in_memory()
        self._held = {s.id_index: s for s in held if s.id_index}

    def get(self, id_index: bytes) -> Student | None:
        found = self._held.get(id_index)
        if found is None and self._loader is not None:
            found = self._loader.stored_student_by_id_index(id_index)
        return found

    def __contains__(self, id_index: bytes) -> bool:
        return self.get(id_index) is not None

    def __setitem__(self, id_index: bytes, student: Student) -> None:
        self._held[id_index] = student


async def enroll(
    hub: Hub,
    operator: Operator,
    request_id: str,
    school_id: str,
    new: NewStudent,
    fingerprint: bytes,
    render: Callable[[Student], M],
    parse: Callable[[bytes], M],
) -> M:
    protector = FieldProtector(hub.keys)

    def decide(now: int) -> tuple[M, Batch]:
        check_school(hub, operator, school_id)
        if new.student_id in hub.campus.students:
            raise AlreadyExists("student_id: a student with this student_id exists already")
        if protector.index(new.id_number) in KnownIdNumbers(hub):
            raise AlreadyExists("id_number: a student with this ID number exists already")
        student, rows = _admit(hub, protector, school_id, new, now)
        rows.audit.append(
            _audit(operator, now, request_id, student, "EnrollStudent", details(group=new.group.value))
        )
        return render(student), rows

    return await idempotent(hub, operator, request_id, "EnrollStudent", fingerprint, parse, decide)


async def change_status(
    hub: Hub,
    operator: Operator,
    request_id: str,
    student_id: str,
    action: Action,
    fingerprint: bytes,
    render: Callable[[Student], M],
    parse: Callable[[bytes], M],
) -> M:
    """Suspend, resume, graduate or withdraw; the next tap sees the new status."""
    method = ACTION_NAMES[action]

    def decide(now: int) -> tuple[M, Batch]:
        student = student_of(hub, operator, student_id)
        before = student.enrollment
        student.enrollment = next_status(action, before)
        rows = Batch(
            student_status=[
                StudentStatusRow(student.student_id, student.school_id, student.enrollment.value)
            ],
            audit=[
                _audit(
                    operator,
                    now,
                    request_id,
                    student,
                    method,
                    details(before=before.value, after=student.enrollment.value),
                )
            ],
        )
        return render(student), rows

    return await idempotent(hub, operator, request_id, method, fingerprint, parse, decide)


async def transfer(
    hub: Hub,
    operator: Operator,
    request_id: str,
    student_id: str,
    to_school_id: str,
    fingerprint: bytes,
    render: Callable[[Student, str], M],
    parse: Callable[[bytes], M],
) -> M:
    """转学, by a province administrator or a clerk of the source school. The wallet (its account and
    balance) stays the student's; their cards now work at the new school and not at the old one."""

    def decide(now: int) -> tuple[M, Batch]:
        student = student_of(hub, operator, student_id)
        if to_school_id not in hub.campus.schools:
            raise NotFound("to_school_id: no such school", field="to_school_id")
        from_school_id = student.school_id
        if to_school_id == from_school_id:
            raise InvalidArgument("to_school_id", "the student is at this school already")
        next_status(Action.TRANSFER, student.enrollment)  # graduated and withdrawn students stay
        moved = hub.campus.move_student(student, to_school_id, at_ms=now)
        rows = Batch(
            blocklist=moved,  # both schools' blocklists follow, durable with the transfer
            student_status=[StudentStatusRow(student.student_id, to_school_id, student.enrollment.value)],
            audit=[
                _audit(
                    operator,
                    now,
                    request_id,
                    student,
                    "TransferStudent",
                    details(from_school=from_school_id, to_school=to_school_id),
                )
            ],
        )
        return render(student, from_school_id), rows

    return await idempotent(hub, operator, request_id, "TransferStudent", fingerprint, parse, decide)


async def import_roster(
    hub: Hub,
    operator: Operator,
    request_id: str,
    school_id: str,
    parsed: list[RosterRow],
    fingerprint: bytes,
    render: Callable[[list[RowResult]], M],
    parse: Callable[[bytes], M],
) -> M:
    """Enrolls the roster's good rows at `school_id`, all in one batch; reports every row.

    A row already checked by `parse_roster` is still refused here when its student_id belongs to
    another student; a known ID number (at any school) is EXISTING and changes nothing.
    """
    protector = FieldProtector(hub.keys)

    def decide(now: int) -> tuple[M, Batch]:
        check_school(hub, operator, school_id)
        known = KnownIdNumbers(hub)
        rows = Batch()
        results: list[RowResult] = []
        for row in parsed:
            new = row.student
            if new is None:
                results.append(
                    RowResult(row.line, row.student_id, REJECTED, int(row.problem or 0), row.message)
                )
                continue
            existing = known.get(protector.index(new.id_number))
            if existing is not None:
                note = "a student with this ID number exists already; nothing changed"
                results.append(RowResult(row.line, row.student_id, EXISTING, 0, note))
                continue
            if new.student_id in hub.campus.students:
                results.append(
                    RowResult(
                        row.line,
                        row.student_id,
                        REJECTED,
                        int(Problem.STUDENT_ID_TAKEN),
                        "student_id: belongs to another student",
                    )
                )
                continue
            student, added = _admit(hub, protector, school_id, new, now)
            known[student.id_index] = student
            rows.extend(added)
            rows.audit.append(
                _audit(operator, now, request_id, student, "ImportRoster", details(line=row.line))
            )
            results.append(RowResult(row.line, row.student_id, ENROLLED))
        enrolled = sum(r.outcome == ENROLLED for r in results)
        rows.audit.append(
            AuditRow(
                now,
                "operator",
                operator.operator_id,
                school_id,
                "",
                "",
                "ImportRoster",
                request_id,
                details(
                    rows=len(results),
                    enrolled=enrolled,
                    existing=sum(r.outcome == EXISTING for r in results),
                    rejected=sum(r.outcome == REJECTED for r in results),
                ),
            )
        )
        return render(results), rows

    return await idempotent(hub, operator, request_id, "ImportRoster", fingerprint, parse, decide)
