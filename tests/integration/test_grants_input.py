"""GrantService input and reports on a real hub (no bank needed): per-line errors for items and
CSV, nothing written for a refused batch, idempotent submit, clerk scope, approval once."""

from __future__ import annotations

from pathlib import Path

import pytest

from onecard.grants.v1 import grant_service_pb2 as pb
from onecard_client import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from onecard_hub.server import RunningHub
from tests.conftest import db_count
from tests.integration.grant_fixtures import YEAR, grants_client, students_with_cards

GRANT = pb.GRANT_TYPE_NATIONAL_GRANT


def schools(hub: RunningHub) -> list[str]:
    return sorted(hub.hub.campus.schools)


async def test_bad_items_refuse_the_batch_whole_with_an_error_per_line(
    hub: RunningHub, campus_dir: Path
) -> None:
    school, other = schools(hub)
    ours = [s for s, _ in students_with_cards(hub, school, 3)]
    theirs = students_with_cards(hub, other, 1)[0][0]
    items = [
        (ours[0], 100_000),
        ("no-such-student", 100_000),
        (theirs, 100_000),
        (ours[1], -5),
        (ours[2], 0),
        (ours[0], 100_000),
        (ours[1], 10**12),
    ]
    async with grants_client(hub) as client:
        answer = await client.submit_grant_batch("in-1", school, "BAD", GRANT, YEAR, items)
        assert not answer.accepted and not answer.HasField("batch")
        assert [(e.line, e.problem) for e in answer.errors] == [
            (2, pb.LINE_PROBLEM_UNKNOWN_STUDENT),
            (3, pb.LINE_PROBLEM_OTHER_SCHOOL),
            (4, pb.LINE_PROBLEM_AMOUNT_NOT_POSITIVE),
            (5, pb.LINE_PROBLEM_AMOUNT_NOT_POSITIVE),
            (6, pb.LINE_PROBLEM_DUPLICATE_STUDENT),
            (7, pb.LINE_PROBLEM_AMOUNT_TOO_LARGE),
        ]
        assert db_count(campus_dir, "grant_batches") == 0 and db_count(campus_dir, "grant_items") == 0
        with pytest.raises(NotFoundError):
            await client.get_grant_batch(school, "BAD")
        kept = await client.submit_grant_batch(
            "in-2", school, "BAD", GRANT, YEAR, items, accept_valid_lines=True
        )
        assert kept.accepted and len(kept.errors) == 6
        assert [(i.student_id, i.amount_fen) for i in kept.batch.items] == [(ours[0], 100_000)]
        assert db_count(campus_dir, "grant_items") == 1


async def test_csv_rows_are_checked_line_by_line(hub: RunningHub) -> None:
    school = schools(hub)[0]
    a, b, c = (s for s, _ in students_with_cards(hub, school, 3))
    text = "\n".join(
        [
            "student_id,amount_fen",
            f"{a},200000",
            "broken row without comma",
            f"{b},12.50",
            f"{a},200000",
            "",
            f"{c},-300",
            f"{b},150000,备注",
            f"{c},1,2,3",
        ]
    )
    async with grants_client(hub) as client:
        answer = await client.import_grant_batch_csv("csv-1", school, "CSV1", GRANT, YEAR, text)
        assert not answer.accepted
        assert [(e.line, e.problem) for e in answer.errors] == [
            (3, pb.LINE_PROBLEM_MALFORMED_ROW),
            (4, pb.LINE_PROBLEM_MALFORMED_ROW),
            (5, pb.LINE_PROBLEM_DUPLICATE_STUDENT),
            (7, pb.LINE_PROBLEM_AMOUNT_NOT_POSITIVE),
            (9, pb.LINE_PROBLEM_MALFORMED_ROW),
        ]
        kept = await client.import_grant_batch_csv(
            "csv-2", school, "CSV1", GRANT, YEAR, text, accept_valid_lines=True
        )
        assert [(i.student_id, i.amount_fen) for i in kept.batch.items] == [(a, 200_000), (b, 150_000)]
        with pytest.raises(InvalidArgumentError):
            await client.import_grant_batch_csv("csv-3", school, "CSV2", GRANT, YEAR, "id,fen\nx,1")


async def test_submit_is_idempotent_and_a_batch_id_is_used_once(hub: RunningHub, campus_dir: Path) -> None:
    school = schools(hub)[0]
    items = [(s, 90_000) for s, _ in students_with_cards(hub, school, 4)]
    async with grants_client(hub) as client:
        first = await client.submit_grant_batch("id-1", school, "B9", GRANT, YEAR, items)
        again = await client.submit_grant_batch("id-1", school, "B9", GRANT, YEAR, items)
        assert first == again
        assert db_count(campus_dir, "grant_batches") == 1
        with pytest.raises(FailedPreconditionError):  # the same request_id, another body
            await client.submit_grant_batch("id-1", school, "B9", GRANT, YEAR, items[:2])
        with pytest.raises(AlreadyExistsError):
            await client.submit_grant_batch("id-2", school, "B9", GRANT, YEAR, items)
        approved = await client.approve_grant_batch("id-3", school, "B9")
        assert approved.batch.status == pb.BATCH_STATUS_PAYING  # no bank: items wait, PENDING
        assert approved == await client.approve_grant_batch("id-3", school, "B9")
        with pytest.raises(FailedPreconditionError):
            await client.approve_grant_batch("id-4", school, "B9")
        with pytest.raises(InvalidArgumentError):
            await client.submit_grant_batch("id-5", school, "bad id!", GRANT, YEAR, items)
        with pytest.raises(InvalidArgumentError):
            await client.submit_grant_batch("id-6", school, "B10", GRANT, "2026", items)


async def test_a_clerk_acts_on_their_own_school_only(hub: RunningHub) -> None:
    school, other = schools(hub)
    items = [(s, 90_000) for s, _ in students_with_cards(hub, school, 2)]
    async with grants_client(hub, f"{school}-clerk") as ours, grants_client(hub, f"{other}-clerk") as theirs:
        assert (await ours.submit_grant_batch("sc-1", school, "S1", GRANT, YEAR, items)).accepted
        with pytest.raises(PermissionDeniedError):
            await theirs.submit_grant_batch("sc-2", school, "S2", GRANT, YEAR, items)
        with pytest.raises(PermissionDeniedError):
            await theirs.get_grant_batch(school, "S1")
        with pytest.raises(PermissionDeniedError):
            await theirs.approve_grant_batch("sc-3", school, "S1")
        with pytest.raises(PermissionDeniedError):
            await theirs.get_grant_coverage()  # the province is for province administrators
        other_students = [(s, 1_000) for s, _ in students_with_cards(hub, other, 1)]
        refused = await ours.submit_grant_batch("sc-4", school, "S3", GRANT, YEAR, other_students)
        assert [e.problem for e in refused.errors] == [pb.LINE_PROBLEM_OTHER_SCHOOL]
