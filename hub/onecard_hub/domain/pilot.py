"""Pilot first, then everyone: which scenes are live at a school (pure).

The province turns scenes on school by school at run time (`AdminService.SetLiveScenes`); a tap
for a scene that is not live at the terminal's school is declined SCENE_NOT_LIVE (`Campus.authorize`,
and the library and exam scenes through the same `School.live_scenes`). Stored as the scene
numbers, comma-separated; NULL (never set) means every scene, including scenes added later.
"""

from __future__ import annotations

from collections.abc import Iterable

from onecard_hub.domain.errors import InvalidArgument, PermissionDenied
from onecard_hub.domain.model import ALL_SCENES, Operator, Scene

PROVINCE_ADMIN = "province_admin"


def require_province_admin(operator: Operator, what: str) -> None:
    if operator.school_id or operator.role != PROVINCE_ADMIN:
        raise PermissionDenied(f"{what} is for province administrators", reason="ROLE_NOT_ALLOWED")


def scenes_from_numbers(numbers: Iterable[int], field: str = "scenes") -> frozenset[Scene]:
    """The scenes a request names; INVALID_ARGUMENT naming the first unknown one (repeats are fine)."""
    known = {int(s) for s in Scene}
    scenes: set[Scene] = set()
    for i, number in enumerate(numbers):
        if number not in known:
            raise InvalidArgument(f"{field}[{i}]", "not a known scene")
        scenes.add(Scene(number))
    return frozenset(scenes)


def live_scenes_text(scenes: frozenset[Scene]) -> str:
    return ",".join(str(int(s)) for s in sorted(scenes))


def live_scenes_from_text(text: str | None) -> frozenset[Scene]:
    """What the store holds → the scenes; None → every scene; numbers this hub does not know are skipped."""
    if text is None:
        return ALL_SCENES
    known = {int(s) for s in Scene}
    return frozenset(Scene(int(n)) for n in text.split(",") if n.strip().isdigit() and int(n) in known)
