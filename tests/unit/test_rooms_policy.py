"""Role grants and request limits of the rooms API, without any I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from rooms.models import CreateRoom, JoinRoom, StartRecording
from rooms.policy import effective_customization, grants_for, with_changes


def test_teacher_publishes_shares_screen_and_manages():
    g = grants_for("TEACHER", {})
    assert g.can_publish and g.can_screen_share and g.room_admin


def test_moderator_is_a_teacher_in_livekit():
    g = grants_for("MODERATOR", {})
    assert g.can_publish and g.can_screen_share and g.room_admin


def test_student_watches_and_sends_data_only():
    g = grants_for("STUDENT", {})
    assert not g.can_publish and g.can_subscribe and g.can_publish_data
    assert not g.room_admin and g.sources == ()


def test_student_without_chat_or_hand_raise_sends_no_data():
    g = grants_for("STUDENT", {"needChat": False, "allowHandRaise": False})
    assert not g.can_publish_data
    assert grants_for("STUDENT", {"needChat": False}).can_publish_data  # hand raises are data messages


def test_admin_may_do_everything():
    g = grants_for("ADMIN", {"allowScreenShare": False})
    assert g.can_publish and g.can_screen_share and g.room_admin


@pytest.mark.parametrize("role", ["TEACHER", "MODERATOR", "STUDENT", "ADMIN"])
def test_no_role_gets_a_project_wide_grant_or_may_rewrite_itself(role):
    # Recording, room creation and listing are LiveKit grants that are not scoped to the token's
    # room; our API records with its own credentials (rooms.policy), so Grants cannot even carry them.
    fields = set(grants_for(role, {}).__slots__)
    assert not fields & {"room_record", "room_create", "room_list", "ingress_admin", "can_update_metadata"}


def test_customization_takes_screen_share_away():
    assert not grants_for("TEACHER", {"allowScreenShare": False}).can_screen_share


def test_permission_overrides():
    g = with_changes(grants_for("STUDENT", {}), {"can_publish": True})
    assert g.can_publish and "microphone" in g.sources and not g.can_screen_share
    g = with_changes(grants_for("TEACHER", {}), {"can_screen_share": False, "hidden": True})
    assert not g.can_screen_share and g.hidden and g.can_publish
    assert with_changes(grants_for("TEACHER", {}), {"can_publish": False}).sources == ()


def test_join_flags_override_the_rooms_and_ingress_defaults_off():
    merged = effective_customization({"needChat": True, "theme": "dark"}, {"needChat": False})
    assert merged == {"allowIngress": False, "needChat": False, "theme": "dark"}


def _create(**changes):
    body = {
        "roomId": "r-1",
        "title": "T",
        "participant": {"uid": "u", "name": "N", "role": "TEACHER"},
    } | changes
    return CreateRoom.model_validate(body)


def test_create_defaults_follow_api_md():
    body = _create()
    assert body.settings.max_participants == 1000 and body.settings.empty_timeout == 300
    assert StartRecording().options.preset == "H264_1080P_30"


@pytest.mark.parametrize(
    "changes",
    [
        {"roomId": "a b"},
        {"roomId": ""},
        {"roomId": "r" * 101},
        {"title": "t" * 101},
        {"settings": {"maxParticipants": 5001}},
        {"settings": {"emptyTimeout": 1801}},
        {"settings": {"maxParticipants": 0}},
        {"participant": {"uid": "u", "name": "N", "role": "teacher"}},
        {"customization": {"showLobbby": True}},
    ],
)
def test_create_limits(changes):
    with pytest.raises(ValidationError):
        _create(**changes)


def test_limits_are_inclusive():
    body = _create(
        roomId="r" * 100, title="t" * 100, settings={"maxParticipants": 5000, "emptyTimeout": 1800}
    )
    assert body.settings.max_participants == 5000
    assert JoinRoom.model_validate({"participant": {"uid": "u", "name": "N"}}).participant.role is None
