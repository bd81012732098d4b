"""Proto messages of misuse signals (AdminService.ListMisuseSignals)."""

from __future__ import annotations

from onecard.admin.v1 import admin_service_pb2 as pb
from onecard_hub.domain.misuse import MisuseKind, MisuseSignal, PlacedTap

KIND = {
    MisuseKind.TWO_GATES: pb.MISUSE_KIND_TWO_GATES,
    MisuseKind.TWO_CANTEEN_WINDOWS: pb.MISUSE_KIND_TWO_CANTEEN_WINDOWS,
    MisuseKind.TWO_SCHOOLS: pb.MISUSE_KIND_TWO_SCHOOLS,
}


def _tap(tap: PlacedTap) -> pb.MisuseTap:
    message = pb.MisuseTap(
        terminal_id=tap.terminal_id,
        school_id=tap.school_id,
        place=tap.place,
        scene=int(tap.scene),  # type: ignore[arg-type]
    )
    message.at.FromMilliseconds(tap.at_ms)
    return message


def signal_message(signal: MisuseSignal, holder_name_masked: str) -> pb.MisuseSignal:
    return pb.MisuseSignal(
        signal_id=signal.signal_id,
        kind=KIND[signal.kind],
        card_no=signal.card_no,
        student_id=signal.student_id,
        holder_name_masked=holder_name_masked,
        school_id=signal.school_id,
        first=_tap(signal.first),
        second=_tap(signal.second),
        gap_ms=signal.gap_ms,
    )
