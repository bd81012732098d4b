"""GrantsClient (async): an operator's connection to the GrantService (奖助学金).

Every mutating call takes the caller's `request_id`: the same id and body answer the original
response. Grant types are `onecard.grants.v1.GrantType` numbers (GRANT_TYPE_* below).
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard.grants.v1 import grant_service_pb2 as pb
from onecard.grants.v1 import grant_service_pb2_grpc as pb_grpc
from onecard_client._async_client import _AsyncClient
from onecard_client._channel import OPERATOR_HEADER
from onecard_client._config import ClientConfig


class GrantsClient(_AsyncClient):
    """Grant batches; a clerk acts only on their own school."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._grants = pb_grpc.GrantServiceStub(self._channel)

    async def submit_grant_batch(
        self,
        request_id: str,
        school_id: str,
        batch_id: str,
        grant_type: int,
        academic_year: str,
        items: Iterable[tuple[str, int]],
        *,
        accept_valid_lines: bool = False,
        deadline_s: float | None = None,
    ) -> pb.SubmitGrantBatchResponse:
        """A batch of (student_id, amount_fen); refused whole (`accepted` false) when a line
        is bad, unless `accept_valid_lines`."""
        request = pb.SubmitGrantBatchRequest(
            request_id=request_id,
            school_id=school_id,
            batch_id=batch_id,
            grant_type=grant_type,  # type: ignore[arg-type]
            academic_year=academic_year,
            items=[pb.GrantItemInput(student_id=s, amount_fen=a) for s, a in items],
            accept_valid_lines=accept_valid_lines,
        )
        return await self._call(self._grants.SubmitGrantBatch, request, deadline_s)

    async def import_grant_batch_csv(
        self,
        request_id: str,
        school_id: str,
        batch_id: str,
        grant_type: int,
        academic_year: str,
        csv: str,
        *,
        accept_valid_lines: bool = False,
        deadline_s: float | None = None,
    ) -> pb.ImportGrantBatchCsvResponse:
        """The same from CSV text with the header `student_id,amount_fen`."""
        request = pb.ImportGrantBatchCsvRequest(
            request_id=request_id,
            school_id=school_id,
            batch_id=batch_id,
            grant_type=grant_type,  # type: ignore[arg-type]
            academic_year=academic_year,
            csv=csv,
            accept_valid_lines=accept_valid_lines,
        )
        return await self._call(self._grants.ImportGrantBatchCsv, request, deadline_s)

    async def notify_batch(
        self, request_id: str, school_id: str, batch_id: str, *, deadline_s: float | None = None
    ) -> pb.NotifyBatchResponse:
        """Notifies the batch's students whose bank function is not activated (once each)."""
        request = pb.NotifyBatchRequest(request_id=request_id, school_id=school_id, batch_id=batch_id)
        return await self._call(self._grants.NotifyBatch, request, deadline_s)

    async def list_notifications(
        self, school_id: str, batch_id: str, *, deadline_s: float | None = None
    ) -> pb.ListNotificationsResponse:
        """The advance notices written for a batch."""
        request = pb.ListNotificationsRequest(school_id=school_id, batch_id=batch_id)
        return await self._call(self._grants.ListNotifications, request, deadline_s)

    async def approve_grant_batch(
        self, request_id: str, school_id: str, batch_id: str, *, deadline_s: float | None = None
    ) -> pb.ApproveGrantBatchResponse:
        """The explicit step before money moves: the batch starts paying."""
        request = pb.ApproveGrantBatchRequest(request_id=request_id, school_id=school_id, batch_id=batch_id)
        return await self._call(self._grants.ApproveGrantBatch, request, deadline_s)

    async def retry_failed_items(
        self, request_id: str, school_id: str, batch_id: str, *, deadline_s: float | None = None
    ) -> pb.RetryFailedItemsResponse:
        """FAILED items are paid again, each with a new bank transfer."""
        request = pb.RetryFailedItemsRequest(request_id=request_id, school_id=school_id, batch_id=batch_id)
        return await self._call(self._grants.RetryFailedItems, request, deadline_s)

    async def get_grant_batch(
        self, school_id: str, batch_id: str, *, deadline_s: float | None = None
    ) -> pb.GetGrantBatchResponse:
        """The batch report: totals per status, items with reasons."""
        request = pb.GetGrantBatchRequest(school_id=school_id, batch_id=batch_id)
        return await self._call(self._grants.GetGrantBatch, request, deadline_s)

    async def get_grant_coverage(
        self, school_id: str = "", academic_year: str = "", *, deadline_s: float | None = None
    ) -> pb.GetGrantCoverageResponse:
        """Coverage by grant type and student group (a school, or the province)."""
        request = pb.GetGrantCoverageRequest(school_id=school_id, academic_year=academic_year)
        return await self._call(self._grants.GetGrantCoverage, request, deadline_s)
