"""Taps at a library desk or an exam tablet, built like a reader builds them (the credential of
Authorize, its cryptogram over the scene number and amount 0), for the library and exam tests."""

from __future__ import annotations

from typing import TypeVar

from onecard.auth.v1 import authorization_service_pb2 as auth_pb
from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard.library.v1 import library_service_pb2 as lib_pb
from onecard_client.campus import CardCredential, TerminalInfo
from tests.helpers import Campus, new_request_id

BORROW, RETURN, CHECK_IN = (
    auth_pb.SCENE_LIBRARY_BORROW,
    auth_pb.SCENE_LIBRARY_RETURN,
    auth_pb.SCENE_EXAM_CHECK_IN,
)
DeskRequest = TypeVar("DeskRequest", lib_pb.BorrowRequest, lib_pb.ReturnRequest, exam_pb.CheckInRequest)


def desk(campus: Campus, school: int = 0) -> TerminalInfo:
    return campus.creds.terminals_of(campus.school(school), "library_desk")[0]


def tablets(campus: Campus, school: int = 0) -> list[TerminalInfo]:
    return campus.creds.terminals_of(campus.school(school), "exam_tablet")


def tap(
    campus: Campus,
    request: DeskRequest,
    card: CardCredential,
    terminal: TerminalInfo,
    scene: int,
    *,
    qr: bool = False,
    atc: int | None = None,
) -> DeskRequest:
    """Fills in request_id (unless set), terminal_id, the credential and the tap time."""
    request.request_id = request.request_id or new_request_id()
    request.terminal_id = terminal.terminal_id
    if qr:
        made = campus.qr(card, terminal, scene, request_id=request.request_id)
        request.qr.CopyFrom(made.qr)
    else:
        made = campus.chip(card, terminal, scene, request_id=request.request_id, atc=atc)
        request.chip.CopyFrom(made.chip)
    request.tap_time.CopyFrom(made.tap_time)
    return request


def borrow(campus: Campus, card: CardCredential, book_id: str, **kw: object) -> lib_pb.BorrowRequest:
    terminal = kw.pop("terminal", None) or desk(campus)
    return tap(campus, lib_pb.BorrowRequest(book_id=book_id), card, terminal, BORROW, **kw)  # type: ignore[arg-type]


def give_back(campus: Campus, card: CardCredential, book_id: str, **kw: object) -> lib_pb.ReturnRequest:
    terminal = kw.pop("terminal", None) or desk(campus)
    return tap(campus, lib_pb.ReturnRequest(book_id=book_id), card, terminal, RETURN, **kw)  # type: ignore[arg-type]


def check_in(
    campus: Campus,
    card: CardCredential,
    session_id: str,
    terminal: TerminalInfo,
    *,
    room: str = "",
    **kw: object,
) -> exam_pb.CheckInRequest:
    request = exam_pb.CheckInRequest(session_id=session_id, room=room)
    return tap(campus, request, card, terminal, CHECK_IN, **kw)  # type: ignore[arg-type]
