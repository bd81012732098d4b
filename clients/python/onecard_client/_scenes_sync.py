"""LibraryAdminClient and ExamAdminClient (blocking): an operator's calls for the library and exam
scenes. Terminal-side calls (`borrow`, `return_book`, `check_in`) are on `TerminalClient`.

Every mutating call takes the caller's `request_id`: the same id and body answer the original
response (also after a retry on UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard.exam.v1 import exam_service_pb2 as exam_pb
from onecard.exam.v1 import exam_service_pb2_grpc as exam_grpc
from onecard.library.v1 import library_service_pb2 as library_pb
from onecard.library.v1 import library_service_pb2_grpc as library_grpc
from onecard_client import _scene_requests as build
from onecard_client._channel import OPERATOR_HEADER
from onecard_client._config import ClientConfig
from onecard_client._sync_client import _SyncClient


class LibraryAdminClient(_SyncClient):
    """The card office's view of the library: a clerk sees their own school."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._library = library_grpc.LibraryAdminServiceStub(self._channel)

    def list_overdue_loans(
        self, school_id: str, *, deadline_s: float | None = None
    ) -> library_pb.ListOverdueLoansResponse:
        return self._call(self._library.ListOverdueLoans, build.overdue_loans(school_id), deadline_s)


class ExamAdminClient(_SyncClient):
    """Exam sessions, rosters and attendance; a clerk acts on their own school's sessions."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._exam = exam_grpc.ExamAdminServiceStub(self._channel)

    def create_exam_session(
        self, request_id: str, session: exam_pb.ExamSession, *, deadline_s: float | None = None
    ) -> exam_pb.CreateExamSessionResponse:
        """`session`: its id, school, subject, rooms, start and end, and optionally the check-in window."""
        request = build.create_exam_session(request_id, session)
        return self._call(self._exam.CreateExamSession, request, deadline_s)

    def import_exam_roster(
        self,
        request_id: str,
        session_id: str,
        rows: Iterable[exam_pb.RosterRow | tuple[str, str, str]],
        *,
        deadline_s: float | None = None,
    ) -> exam_pb.ImportExamRosterResponse:
        """`rows`: RosterRow messages or (student_id, room, seat) tuples."""
        request = build.import_exam_roster(request_id, session_id, rows)
        return self._call(self._exam.ImportExamRoster, request, deadline_s)

    def close_exam_session(
        self, request_id: str, session_id: str, *, deadline_s: float | None = None
    ) -> exam_pb.CloseExamSessionResponse:
        request = build.close_exam_session(request_id, session_id)
        return self._call(self._exam.CloseExamSession, request, deadline_s)

    def get_attendance(
        self, session_id: str, *, deadline_s: float | None = None
    ) -> exam_pb.GetAttendanceResponse:
        return self._call(self._exam.GetAttendance, build.attendance(session_id), deadline_s)
