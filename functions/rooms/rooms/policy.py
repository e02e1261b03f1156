"""Who may do what in a classroom: the grants each role gets, shaped by the room's customization.

API.md: TEACHER publishes, shares screen, records, manages participants and ends the class;
MODERATOR is a teacher who cannot end the class or start a recording; STUDENT watches, raises a
hand, chats and answers polls; ADMIN may do everything. `customization` can only take rights away
(screen share, hand raise, chat, recording), never add them.

Only grants LiveKit scopes to the token's own room go into a join token (it reaches a browser):
LiveKit checks `roomRecord` (Egress), `roomCreate`, `roomList` and `ingressAdmin` project-wide, and
one LiveKit project serves every org, so a join token carrying one could list, stop or start any
org's recordings. Recording is a right our API checks (`RECORDING_ROLES`) and exercises with its own
server credentials. Nobody may rewrite their own metadata or attributes (`canUpdateOwnMetadata`):
hand raises travel as data messages, whose sender LiveKit sets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

CAMERA_MIC = ("camera", "microphone")
SCREEN = ("screen_share", "screen_share_audio")
ROLES = frozenset({"TEACHER", "MODERATOR", "STUDENT", "ADMIN"})
RECORDING_ROLES = frozenset({"TEACHER", "ADMIN"})


@dataclass(frozen=True, slots=True)
class Grants:
    """The LiveKit rights of one participant (turned into VideoGrants by the LiveKit module)."""

    can_publish: bool
    can_subscribe: bool
    can_publish_data: bool
    sources: tuple[str, ...]
    room_admin: bool
    hidden: bool = False

    @property
    def can_screen_share(self) -> bool:
        return "screen_share" in self.sources


def _allowed(customization: dict[str, Any], flag: str) -> bool:
    # Flags are opt-out: a room allows screen share, hand raise, chat and recording unless told not to.
    return customization.get(flag) is not False


def grants_for(role: str, customization: dict[str, Any]) -> Grants:
    """The grants of `role` in a room with this (camelCase) customization."""
    chat = _allowed(customization, "needChat")
    hand = _allowed(customization, "allowHandRaise")
    screen = SCREEN if _allowed(customization, "allowScreenShare") else ()
    if role == "ADMIN":
        return Grants(True, True, True, CAMERA_MIC + SCREEN, True)
    if role in ("TEACHER", "MODERATOR"):
        return Grants(True, True, True, CAMERA_MIC + screen, True)
    # Students publish no media; the data channel carries chat, hand raises and poll answers.
    return Grants(False, True, chat or hand, (), False)


def with_changes(grants: Grants, changes: dict[str, Any]) -> Grants:
    """`grants` with explicit per-participant overrides (None leaves a right as it is)."""
    updated = grants
    for field in ("can_publish", "can_subscribe", "can_publish_data", "hidden"):
        if changes.get(field) is not None:
            updated = replace(updated, **{field: bool(changes[field])})
    share = changes.get("can_screen_share")
    if share is not None:
        base = tuple(s for s in updated.sources if s not in SCREEN)
        updated = replace(updated, sources=base + (SCREEN if share else ()))
    if updated.can_publish and not any(s in updated.sources for s in CAMERA_MIC):
        updated = replace(updated, sources=CAMERA_MIC + updated.sources)
    if not updated.can_publish:
        updated = replace(updated, sources=())
    return updated


def effective_customization(room: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The room's customization with this participant's flags laid over it."""
    merged = {"allowIngress": False} | dict(room) | dict(given)
    return merged
