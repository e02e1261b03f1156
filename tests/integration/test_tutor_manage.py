"""What the teacher and the org's server manage through the tutor: material (notes, slides, PDF),
settings, every exchange, usage per room; each route scoped by org (another org's ids are 404 and
never its data)."""

from __future__ import annotations

import base64

import pytest
from ai_support import (
    ingest_queue,  # noqa: F401 - a fixture (usefixtures)
    pdf_with_text,
    queued,
    work,
)
from ai_tutor.handler import handler
from support import call
from tutor_support import ROOM_ID, Classroom, add_notes, ask_stream, question, tutor_event

pytest_plugins = ("livekit_support", "tutor_support")


def send(name, headers, ctx, body=None, query=None, **params):
    return call(handler, tutor_event(name, headers, body, query=query, **params), ctx)


def test_slides_as_pdf_become_material_the_tutor_answers_from(classroom: Classroom, lambda_context):
    pdf = pdf_with_text(
        [
            "Slide 3: Photosynthesis turns light energy into chemical energy stored in glucose.",
            "Slide 4: Chlorophyll in the chloroplasts absorbs mostly red and blue light.",
        ]
    )
    body = {
        "title": "Biology slides",
        "kind": "slides",
        "contentType": "application/pdf",
        "contentBase64": base64.b64encode(pdf).decode(),
    }
    added = send("material_add", classroom.headers, lambda_context, body, room_id=ROOM_ID)
    assert added.status == 201, added.body
    assert (
        added.data["kind"] == "slides" and added.data["chunkCount"] >= 1 and added.data["roomId"] == ROOM_ID
    )
    notes = add_notes(classroom, lambda_context)
    listed = send("material_list", classroom.headers, lambda_context, room_id=ROOM_ID).data["material"]
    assert [(m["title"], m["kind"]) for m in listed] == [
        ("Lecture notes", "notes"),
        ("Biology slides", "slides"),
    ]
    _, events = ask_stream(
        classroom, lambda_context, question(classroom, "Which light does chlorophyll absorb?")
    )
    assert "red and blue light" in "".join(e.get("text") or "" for e in events[:-2])
    gone = send(
        "material_delete",
        classroom.headers,
        lambda_context,
        room_id=ROOM_ID,
        material_id=added.data["materialId"],
    )
    assert gone.status == 200 and gone.data == {"materialId": added.data["materialId"], "deleted": True}
    listed = send("material_list", classroom.headers, lambda_context, room_id=ROOM_ID).data["material"]
    assert [m["materialId"] for m in listed] == [notes["materialId"]]
    _, events = ask_stream(
        classroom, lambda_context, question(classroom, "Which light does chlorophyll absorb?")
    )
    sources = events[-2]["sources"]
    # The slides are gone from the material; the earlier exchange about them is still part of the class.
    assert not [s for s in sources if s["kind"] == "material" and s["title"].startswith("Biology")]
    assert [s["kind"] for s in sources] == ["earlier"]


@pytest.mark.usefixtures("ingest_queue")
def test_long_material_is_queued_polled_to_ready_and_then_used(classroom: Classroom, lambda_context):
    notes = "\n\n".join(
        f"# Lecture part {n}\n"
        + " ".join(f"Part {n} point {i} recalls forces and motion." for i in range(60))
        for n in range(4)
    )
    notes += "\n\n# Momentum\nMomentum is mass times velocity, and it is conserved in collisions.\n"
    body = {"title": "Long notes", "kind": "notes", "contentType": "text/markdown", "content": notes}
    added = send("material_add", classroom.headers, lambda_context, body, room_id=ROOM_ID)
    assert added.status == 202, added.body
    material_id = added.data["materialId"]
    assert added.data["status"] == "processing" and added.data["kind"] == "notes"
    polled = send("material_get", classroom.headers, lambda_context, room_id=ROOM_ID, material_id=material_id)
    assert polled.status == 200 and polled.data["status"] == "processing"

    [delivery] = queued()
    assert work(delivery, lambda_context)
    ready = send(
        "material_get", classroom.headers, lambda_context, room_id=ROOM_ID, material_id=material_id
    ).data
    assert ready["status"] == "ready" and ready["embeddedChunks"] == ready["chunkCount"] > 4
    _, events = ask_stream(classroom, lambda_context, question(classroom, "What is momentum?"))
    assert any(s["kind"] == "material" and s["title"].startswith("Long notes") for s in events[-2]["sources"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"title": "Empty", "content": "   "}, 400, "VALIDATION_ERROR"),
        ({"title": "Both", "content": "x", "contentBase64": "eA=="}, 400, "VALIDATION_ERROR"),
        (
            {
                "title": "Not PDF",
                "contentType": "application/pdf",
                "contentBase64": base64.b64encode(b"hello").decode(),
            },
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            {
                "title": "Broken PDF",
                "contentType": "application/pdf",
                "contentBase64": base64.b64encode(b"%PDF-1.4 garbage").decode(),
            },
            400,
            "VALIDATION_ERROR",
        ),
        (
            {"title": "Bad base64", "contentType": "application/pdf", "contentBase64": "%%%"},
            400,
            "VALIDATION_ERROR",
        ),
        ({"title": "Huge", "content": "word " * 1_100_000}, 413, "PAYLOAD_TOO_LARGE"),
        ({"title": "Kind", "kind": "video", "content": "x"}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_material_is_refused_and_nothing_is_half_stored(
    classroom: Classroom, lambda_context, body, status, code
):
    from verriflo import db

    reply = send("material_add", classroom.headers, lambda_context, body, room_id=ROOM_ID)
    assert reply.status == status and reply.body["error"] == code, reply.body
    assert db.collection("kb_documents").count_documents({}) == 0
    assert db.collection("kb_chunks").count_documents({}) == 0
    assert send("material_list", classroom.headers, lambda_context, room_id=ROOM_ID).data["material"] == []


def test_settings_default_to_on_and_explaining_and_follow_the_teacher(classroom: Classroom, lambda_context):
    first = send("settings_get", classroom.headers, lambda_context, room_id=ROOM_ID).data
    assert first["enabled"] is True and first["mode"] == "explain" and first["topic"] is None
    changed = send(
        "settings_put",
        classroom.headers,
        lambda_context,
        {"mode": "hints", "topic": "Forces"},
        room_id=ROOM_ID,
    ).data
    assert changed["mode"] == "hints" and changed["topic"] == "Forces" and changed["enabled"] is True
    assert send("settings_put", classroom.headers, lambda_context, {}, room_id=ROOM_ID).status == 400
    assert (
        send("settings_put", classroom.headers, lambda_context, {"mode": "lecture"}, room_id=ROOM_ID).status
        == 400
    )


def test_the_orgs_defaults_apply_to_every_room_the_teacher_left_alone(
    classroom: Classroom, other_org, lambda_context
):
    from verriflo import auth, orgs

    defaults = send("org_settings_get", classroom.headers, lambda_context).data
    assert (defaults["enabled"], defaults["mode"], defaults["topic"]) == (True, "explain", None)
    body = {"enabled": False, "mode": "hints", "topic": "Algebra"}
    changed = send("org_settings_put", classroom.headers, lambda_context, body).data
    assert (changed["enabled"], changed["mode"], changed["topic"]) == (False, "hints", "Algebra")
    room = send("settings_get", classroom.headers, lambda_context, room_id=ROOM_ID).data
    assert (room["enabled"], room["mode"], room["topic"]) == (False, "hints", "Algebra")
    # the teacher's own choice wins over the default; what they left unset still follows it
    send("settings_put", classroom.headers, lambda_context, {"enabled": True}, room_id=ROOM_ID)
    room = send("settings_get", classroom.headers, lambda_context, room_id=ROOM_ID).data
    assert (room["enabled"], room["mode"], room["topic"]) == (True, "hints", "Algebra")
    # another org's defaults are its own
    theirs = send("org_settings_get", other_org.headers, lambda_context).data
    assert (theirs["enabled"], theirs["mode"], theirs["topic"]) == (True, "explain", None)
    # bad input is 400 and changes nothing; members may read but not change the defaults
    for bad in ({}, {"mode": "lecture"}, {"topic": "x" * 301}, {"enabled": "maybe"}, {"colour": "red"}):
        reply = send("org_settings_put", classroom.headers, lambda_context, bad)
        assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR", bad
    orgs.create_user(
        classroom.org.id, "m@tutor.example", auth.hash_password("a long password!"), role="member"
    )
    token, _, _ = auth.login("m@tutor.example", "a long password!")
    member = {"Authorization": f"Bearer {token}"}
    assert send("org_settings_get", member, lambda_context).data["mode"] == "hints"
    refused = send("org_settings_put", member, lambda_context, {"mode": "explain"})
    assert refused.status == 403 and refused.body["error"] == "FORBIDDEN"
    assert send("org_settings_get", classroom.headers, lambda_context).data == changed


def test_the_teacher_reads_every_exchange_a_page_at_a_time(org, livekit, lambda_context):
    from tutor_support import open_class

    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2"))
    add_notes(room, lambda_context)
    for uid, text in [
        ("s-1", "What is inertia?"),
        ("s-2", "What unit is force measured in?"),
        ("s-1", "What does Newton's second law say?"),
    ]:
        ask_stream(room, lambda_context, question(room, text, uid=uid))
    page = send("interactions", org.headers, lambda_context, query={"limit": "2"}, room_id=ROOM_ID).data
    assert [e["question"] for e in page["exchanges"]] == [
        "What does Newton's second law say?",
        "What unit is force measured in?",
    ]
    assert page["nextBefore"] and all(e["answer"] and e["status"] == "completed" for e in page["exchanges"])
    rest = send(
        "interactions",
        org.headers,
        lambda_context,
        query={"limit": "2", "before": page["nextBefore"]},
        room_id=ROOM_ID,
    ).data
    assert [e["question"] for e in rest["exchanges"]] == ["What is inertia?"] and rest["nextBefore"] is None
    one = send("interactions", org.headers, lambda_context, query={"studentUid": "s-2"}, room_id=ROOM_ID).data
    assert [e["studentUid"] for e in one["exchanges"]] == ["s-2"]
    bad = send("interactions", org.headers, lambda_context, query={"before": "yesterday"}, room_id=ROOM_ID)
    assert bad.status == 400


def test_usage_per_room_counts_interactions_students_tokens_and_cost(
    org, livekit, lambda_context, monkeypatch
):
    from ai_support import ScriptedProvider
    from ai_tutor import answering
    from tutor_support import open_class
    from verriflo import db, ledger

    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2"))
    assert send("usage", org.headers, lambda_context, room_id=ROOM_ID).data["interactions"] == 0
    ask_stream(room, lambda_context, question(room, "What is inertia?"))
    ask_stream(room, lambda_context, question(room, "What is force?", uid="s-2"))
    monkeypatch.setattr(answering, "provider", lambda: ScriptedProvider(pieces=["a", "b"], fail_after=1))
    ask_stream(room, lambda_context, question(room, "And mass?", uid="s-2"))
    usage = send("usage", org.headers, lambda_context, room_id=ROOM_ID).data
    stored = list(db.collection("tutor_interactions").find({"orgId": org.id}))
    assert (
        usage["interactions"] == 3
        and usage["completedInteractions"] == 2
        and usage["failedInteractions"] == 1
    )
    assert usage["students"] == 2
    assert usage["inputTokens"] == sum(d["inputTokens"] for d in stored) > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    charged = sum(
        e["amountMilli"] for e in db.collection("ledger").find({"orgId": org.id, "service": "ai_tutor"})
    )
    assert usage["cost"] == ledger.from_milli(charged) > 0


def test_the_ai_api_usage_summary_counts_the_tutor(classroom: Classroom, lambda_context):
    from ai_agent.handler import handler as agent
    from ai_support import usage_period
    from support import api_event

    ask_stream(classroom, lambda_context, question(classroom, "What is inertia?"))
    summary = call(
        agent,
        api_event("ai_agent/usage_summary.json", headers=classroom.headers, query=usage_period()),
        lambda_context,
    ).data
    tutor = summary["breakdown"]["aiTutor"]
    assert tutor["interactions"] == 1 and tutor["students"] == 1 and tutor["inputTokens"] > 0


@pytest.mark.parametrize(
    ("name", "body", "extra"),
    [
        ("settings_get", None, {}),
        ("settings_put", {"enabled": False}, {}),
        ("material_add", {"title": "Theirs", "content": "Secret notes of the other org."}, {}),
        ("material_list", None, {}),
        ("material_get", None, {"material_id": "MATERIAL"}),
        ("material_delete", None, {"material_id": "MATERIAL"}),
        ("interactions", None, {}),
        ("usage", None, {}),
        ("summary", None, {}),
    ],
)
def test_another_orgs_room_is_not_found_and_never_shows_its_data(
    classroom: Classroom, other_org, lambda_context, name, body, extra
):
    from verriflo import db

    material = add_notes(classroom, lambda_context)
    ask_stream(classroom, lambda_context, question(classroom, "What is inertia?"))
    params = {k: material["materialId"] if v == "MATERIAL" else v for k, v in extra.items()}
    before = {
        c: db.collection(c).count_documents({}) for c in ("tutor_rooms", "kb_documents", "tutor_interactions")
    }
    reply = send(name, other_org.headers, lambda_context, body, room_id=ROOM_ID, **params)
    assert reply.status == 404 and reply.body["error"] == "NOT_FOUND", reply.body
    text = str(reply.body)
    assert classroom.org.id not in text and "inertia" not in text and "Lecture" not in text
    after = {c: db.collection(c).count_documents({}) for c in before}
    assert after == before
    assert send("settings_get", classroom.headers, lambda_context, room_id=ROOM_ID).data["enabled"] is True
