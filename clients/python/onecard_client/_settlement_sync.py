"""SettlementClient (blocking, `onecard_client.sync`): the async client's twin — merchant
settlement per business date, wallet refund on leaving, reconciliation (对账) with the banks'
statements.

Every mutating call takes the caller's `request_id`: the same id and body answer the original
response. The money itself is paid once per purpose (merchant and date, leaving student) whatever
the request ids.
"""

from __future__ import annotations

from onecard.settlement.v1 import settlement_service_pb2 as pb
from onecard.settlement.v1 import settlement_service_pb2_grpc as pb_grpc
from onecard_client._channel import OPERATOR_HEADER
from onecard_client._config import ClientConfig
from onecard_client._sync_client import _SyncClient


class SettlementClient(_SyncClient):
    """Settlement and reconciliation calls; a clerk acts only on their own school."""

    def __init__(self, operator_id: str, config: ClientConfig | None = None) -> None:
        super().__init__(config or ClientConfig(), OPERATOR_HEADER, operator_id)
        self.operator_id = operator_id
        self._settlement = pb_grpc.SettlementServiceStub(self._channel)

    def run_merchant_settlement(
        self, request_id: str, business_date: str, *, school_id: str = "", deadline_s: float | None = None
    ) -> pb.RunMerchantSettlementResponse:
        """Pays each canteen window its takings of `business_date` ("YYYY-MM-DD", a day that is over)."""
        request = pb.RunMerchantSettlementRequest(
            request_id=request_id, business_date=business_date, school_id=school_id
        )
        return self._call(self._settlement.RunMerchantSettlement, request, deadline_s)

    def get_settlement_report(
        self, business_date: str, *, school_id: str = "", deadline_s: float | None = None
    ) -> pb.GetSettlementReportResponse:
        request = pb.GetSettlementReportRequest(business_date=business_date, school_id=school_id)
        return self._call(self._settlement.GetSettlementReport, request, deadline_s)

    def refund_wallet(
        self, request_id: str, student_id: str, *, deadline_s: float | None = None
    ) -> pb.RefundWalletResponse:
        """Pays a graduated or withdrawn student's wallet balance to their bank account, once."""
        request = pb.RefundWalletRequest(request_id=request_id, student_id=student_id)
        return self._call(self._settlement.RefundWallet, request, deadline_s)

    def reconcile(
        self, request_id: str, business_date: str, *, bank_code: str = "", deadline_s: float | None = None
    ) -> pb.ReconcileResponse:
        """对账: each bank's statement of `business_date` against the hub's bank-side transfers."""
        request = pb.ReconcileRequest(request_id=request_id, business_date=business_date, bank_code=bank_code)
        return self._call(self._settlement.Reconcile, request, deadline_s)

    def get_reconciliation_report(
        self, business_date: str, *, bank_code: str = "", deadline_s: float | None = None
    ) -> pb.GetReconciliationReportResponse:
        request = pb.GetReconciliationReportRequest(business_date=business_date, bank_code=bank_code)
        return self._call(self._settlement.GetReconciliationReport, request, deadline_s)
