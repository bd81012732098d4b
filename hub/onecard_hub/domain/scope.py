"""Which schools an operator's listing covers: a card-office clerk sees their own school, a
province administrator any school or all of them."""

from __future__ import annotations

from collections.abc import Container

from onecard_hub.domain.errors import InvalidArgument, NotFound, PermissionDenied
from onecard_hub.domain.model import Operator


def listed_school(operator: Operator, school_id: str, schools: Container[str]) -> str | None:
    """The school a listing covers: a clerk must name their own; a province administrator names
    one or leaves `school_id` empty for every school (None). A named school must exist."""
    if operator.school_id:
        if not school_id:
            raise InvalidArgument("school_id", "required for a school's clerk")
        if school_id != operator.school_id:
            raise PermissionDenied("school_id: another school than the operator's")
    if school_id and school_id not in schools:
        raise NotFound("school_id: no such school", field="school_id")
    return school_id or None
