"""Tenant isolation over the whole API, generated from the OpenAPI document: org A gets real
resources through the API (a live room with a teacher, a student and a recording in the LiveKit
stand-in, tutor material, a video, a knowledge base with a document, a chat, a webhook endpoint with a
delivery, an API key), then every operation whose path names an id is called with A's real ids and
org B's credentials. Each answer must be 404 NOT_FOUND in the envelope, carry none of A's names, and
leave A's data exactly as it was (every stored document of A, and the stand-in's rooms and egress)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from access_support import document_operations, handler_modules, registered_routes
from ai_support import (
    ScriptedProvider,
    ai_env,  # noqa: F401 - an autouse fixture
    grant,
)
from livekit_support import LiveKit, fund
from media_support import UPLOADS, make_video, use_media_env
from support import EVENTS, api_event, call
from tutor_support import add_notes, join, open_class
from verriflo import auth, db, media, orgs, playback

pytest_plugins = ["webhook_fixtures", "livekit_support"]

MARK = "Zebrafish"  # in every name A gives its resources; B's bodies never contain it
MIC = [{"type": "AUDIO", "source": "MICROPHONE"}]
A_NAMES = {
    "room": f"{MARK} physics",
    "material": f"{MARK} lecture notes",
    "kb": f"{MARK} knowledge",
    "document": f"{MARK} cell notes",
    "video": f"{MARK} lesson video",
    "webhook": f"{MARK} LMS hook",
    "key": f"{MARK} ci key",
    "chat": f"{MARK} where is energy made?",
}
# Routes on which even A's own GET does not answer 200, and why (the id is found all the same).
A_GET_NOT_200 = {
    # the recording is still being made (EGRESS_STARTING): the link exists only once it is uploaded
    ("GET", "/v1/room/{room_id}/recording/{egress_id}/download"): 409,
    # the class is still running: its summary is written when it ends
    ("GET", "/v1/ai-tutor/summary/{room_id}"): 202,
}
# API.md: "a missing room is 200 with `exists: false`"; for B, A's room must be exactly that.
MISSING_IS_200 = {("GET", "/v1/room/{room_id}/status")}
# Answers that vary between two reads of unchanged data (signed links, countdowns, a live class's
# running stay and credits).
VOLATILE = {"expiresAt", "expiresIn", "token", "upload", "avgStay", "totalCredits"}


def _handler_of(method: str, path: str):
    function = next(r.function for r in registered_routes() if (r.method, r.path) == (method, path))
    return handler_modules()[function].handler


@cache
def _sample_events() -> dict[tuple[str, str], str]:
    """The sample event file of each route (its body is a valid request body for the route)."""
    found = {}
    for file in sorted(EVENTS.glob("*/*.json")):
        event = json.loads(file.read_text())
        if event.get("resource") and event.get("httpMethod"):
            found[(event["httpMethod"], event["resource"])] = str(file.relative_to(EVENTS))
    return found


def _request(
    method: str, path: str, headers: dict[str, str], params: dict[str, str], body: Any = None, query=None
) -> dict:
    concrete = path
    for name, value in params.items():
        concrete = concrete.replace("{" + name + "}", value)
    event = api_event(
        _sample_events()[(method, path)],
        headers=headers,
        path=concrete,
        method=method,
        path_params=params or None,
        body=body,  # None keeps the sample's own (valid) body
        query=query,
    )
    if query is not None:  # the samples carry their query twice; API Gateway sends both forms
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    event["resource"] = path
    event["requestContext"]["resourcePath"] = path
    event["requestContext"]["httpMethod"] = method
    return event


def _send(method: str, path: str, headers, params, ctx, body: Any = None, query=None):
    return call(_handler_of(method, path), _request(method, path, headers, params, body, query), ctx)


def _body_for(method: str, path: str, ids: dict[str, str]) -> Any:
    """A body that passes validation, so only the lookup of the id can refuse it (None: the sample's)."""
    if path.endswith("/mute"):
        return {"trackSid": ids["track_sid"], "muted": True}
    if path.endswith("/{endpoint_id}/replay"):
        return {"since": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
    return None


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedProvider:
    from ai_agent import answering

    scripted = ScriptedProvider(pieces=["In ", "mitochondria."])
    monkeypatch.setattr(answering, "provider", lambda: scripted)
    return scripted


@pytest.fixture
def media_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from verriflo import aws

    aws.reset_clients()
    use_media_env(monkeypatch)


def _transcoded_video(org, ctx, tmp_path):
    """A video created through the API, its file in the uploads bucket, transcoded by the trigger."""
    import boto3
    from transcode import handler as transcode

    clip = make_video(tmp_path / "clip.mp4", width=320, height=180, seconds=1)
    size = clip.stat().st_size
    created = _created(
        call(
            _handler_of("POST", "/v1/cdn/videos"),
            api_event(
                "cdn/create_video.json",
                headers=org.headers,
                body={"title": A_NAMES["video"], "sizeBytes": size, "contentType": "video/mp4"},
            ),
            ctx,
        )
    )
    video_id = created["video"]["videoId"]
    key = f"{org.id}/{video_id}/source"
    boto3.client("s3").put_object(Bucket=UPLOADS, Key=key, Body=clip.read_bytes())
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": UPLOADS, "arn": f"arn:aws:s3:::{UPLOADS}"},
            "object": {"key": key.replace("/", "%2F"), "size": size, "sequencer": "01"},
        },
    }
    assert transcode.handler({"Records": [record]}, ctx)["results"][0]["outcome"] == "completed"
    return media.get_video(org.id, video_id)


def _owner(org) -> dict[str, str]:
    token, _, _ = auth.login(org.owner_email, org.owner_password)
    return {"Authorization": f"Bearer {token}"}


def _created(reply) -> Any:
    assert reply.status in (200, 201, 202), reply.body
    return reply.data


@pytest.fixture
def org_a(org, livekit: LiveKit, webhook_env, media_env, model, lambda_context, tmp_path) -> dict[str, str]:
    """Org A's real resources, made through the API; the ids of each path parameter."""
    ctx, h = lambda_context, org.headers
    room = open_class(org, livekit, ctx, room_id="tenant-a-room", title=A_NAMES["room"])
    # a second teacher who publishes a microphone: B's mute request names A's real track
    speaker = livekit.join(f"{org.id}.{room.room_id}", join(org, ctx, room.room_id, "t-2", "TEACHER"), MIC)
    livekit.pump(_handler_of("POST", "/v1/room/create"), ctx, "participant_joined")
    recording = _created(
        _send("POST", "/v1/room/{room_id}/recording/start", h, {"room_id": room.room_id}, ctx)
    )
    material = add_notes(room, ctx, title=A_NAMES["material"])
    _created(_send("PUT", "/v1/ai-tutor/rooms/{room_id}/settings", h, {"room_id": room.room_id}, ctx))

    fund(org.id)
    video = _transcoded_video(org, ctx, tmp_path)
    grant(org.id)
    agent = _handler_of("POST", "/v1/ai-agent/knowledge-bases")
    kb = _created(
        call(
            agent,
            api_event(
                "ai_agent/create_kb.json", headers=h, body={"name": A_NAMES["kb"], "description": MARK}
            ),
            ctx,
        )
    )
    kb_id = kb["knowledgeBaseId"]
    document = _created(
        _send(
            "POST",
            "/v1/ai-agent/knowledge-bases/{kb_id}/documents",
            h,
            {"kb_id": kb_id},
            ctx,
            body={
                "title": A_NAMES["document"],
                "contentType": "text/markdown",
                "content": f"# {MARK}\nCells.",
            },
        )
    )
    chat_id = "tenant-a-chat"
    _created(
        call(
            agent,
            api_event("ai_agent/chat.json", headers=h, body={"chatId": chat_id, "message": A_NAMES["chat"]}),
            ctx,
        )
    )

    endpoint = _created(
        call(
            _handler_of("POST", "/v1/webhooks"),
            api_event(
                "webhooks/create.json",
                headers=h,
                body={
                    "url": "http://127.0.0.1:9/hook",
                    "eventTypes": ["room.finished"],
                    "description": A_NAMES["webhook"],
                },
            ),
            ctx,
        )
    )["endpoint"]
    delivery = _created(
        _send("POST", "/v1/webhooks/{endpoint_id}/test", h, {"endpoint_id": endpoint["id"]}, ctx)
    )

    key = _created(
        call(
            _handler_of("POST", "/v1/keys"),
            api_event(
                "identity/list_keys.json", headers=_owner(org), method="POST", body={"name": A_NAMES["key"]}
            ),
            ctx,
        )
    )["key"]
    return {
        "room_id": room.room_id,
        "uid": "t-2",
        "track_sid": speaker["tracks"][0]["sid"],
        "egress_id": recording["egressId"],
        "material_id": material.get("materialId") or material["id"],
        "video_id": video.id,
        "kb_id": kb_id,
        "document_id": document.get("documentId") or document["id"],
        "chat_id": chat_id,
        "endpoint_id": endpoint["id"],
        "delivery_id": delivery["deliveryId"],
        "key_id": key["id"],
        "user_id": orgs.find_user_by_email(org.owner_email).id,
        "rendition": video.renditions[0].name,
    }


def _snapshot(org_id: str, livekit: LiveKit) -> dict[str, Any]:
    """Every stored document that names A's org, and the stand-in's rooms and egress."""
    stored = {}
    for name in sorted(db.database().list_collection_names()):
        docs = [d for d in db.collection(name).find({}) if org_id in json.dumps(d, default=str)]
        stored[name] = sorted(json.dumps(d, default=str, sort_keys=True) for d in docs)
    state = livekit.stand_in.state()
    return {"stored": stored, "rooms": state["rooms"], "egress": state["egress"]}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if k not in VOLATILE and not k.lower().endswith(("url", "urls"))  # signed links
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _as_missing(reply) -> tuple[int, Any]:
    """The answer with the room id the caller named taken out (it only echoes the request)."""
    data = dict(reply.data)
    data.pop("roomId", None)
    return reply.status, data


def _error(reply) -> str:
    """The envelope's error code ("" for a success, or a body that is no envelope: a playlist)."""
    return reply.body.get("error", "") if isinstance(reply.body, dict) else ""


def _id_operations() -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in document_operations() if re.search(r"{\w+}", p)]


def _is_stream(path: str) -> bool:
    return path.startswith("/v1/cdn/stream/")


def test_another_orgs_ids_are_404_on_every_operation_and_change_nothing(
    org, other_org, org_a, livekit: LiveKit, lambda_context
):
    ctx = lambda_context
    operations = _id_operations()
    params_of = {(m, p): {name: org_a[name] for name in re.findall(r"{(\w+)}", p)} for m, p in operations}
    b_headers = {"api": other_org.headers, "owner": _owner(other_org)}

    # Sanity: A's ids are real; A's own read of each one answers 200 (and is what we compare after).
    before_reads, unreal = {}, []
    for method, path in operations:
        if method != "GET" or _is_stream(path):
            continue
        reply = _send(method, path, org.headers, params_of[(method, path)], ctx)
        if reply.status != A_GET_NOT_200.get((method, path), 200):
            unreal.append((method, path, reply.status, reply.body))
        before_reads[(method, path)] = _stable(reply.body)
    assert unreal == [], "\n".join(map(str, unreal))
    before = _snapshot(org.id, livekit)

    matrix, leaks, calls = [], [], 0
    for method, path in operations:
        if _is_stream(path):
            continue
        # keys and users are managed only by dashboard owners and admins
        headers = b_headers["owner"] if path.startswith(("/v1/keys/", "/v1/team/")) else b_headers["api"]
        reply = _send(
            method, path, headers, params_of[(method, path)], ctx, body=_body_for(method, path, org_a)
        )
        calls += 1
        text = json.dumps(reply.body)
        named = [n for n in A_NAMES.values() if n in text] + ([MARK] if MARK in text else [])
        if (method, path) in MISSING_IS_200:
            ok = not named and _as_missing(reply) == _as_missing(
                _send(method, path, headers, {"room_id": "never-made"}, ctx)
            )
        else:
            ok = reply.status == 404 and _error(reply) == "NOT_FOUND" and not named
        matrix.append((method, path, reply.status, _error(reply)))
        if not ok:
            leaks.append((method, path, reply.status, reply.body))

    # The public stream routes answer 403 to any id without a valid token: B's valid token for its
    # own video must not open A's video either.
    fund(other_org.id)
    b_video = _created(
        call(
            _handler_of("POST", "/v1/cdn/videos"),
            api_event(
                "cdn/create_video.json",
                headers=other_org.headers,
                body={"title": "B video", "sizeBytes": 1000, "contentType": "video/mp4"},
            ),
            ctx,
        )
    )["video"]["videoId"]
    b_token, _ = playback.sign(other_org.id, b_video, 3600)
    a_token, _ = playback.sign(org.id, org_a["video_id"], 3600)
    for method, path in operations:
        if not _is_stream(path):
            continue
        own = _send(method, path, {}, params_of[(method, path)], ctx, query={"token": a_token})
        assert own.status == 200, (method, path, own.status, own.body)  # the id is real and playable
        reply = _send(method, path, {}, params_of[(method, path)], ctx, query={"token": b_token})
        calls += 1
        matrix.append((method, path, reply.status, _error(reply)))
        refused = reply.status == 403 and _error(reply) == "FORBIDDEN"
        if not refused or MARK in json.dumps(reply.body):
            leaks.append((method, path, reply.status, reply.body))

    after = _snapshot(org.id, livekit)
    after_reads = {key: _stable(_send(*key, org.headers, params_of[key], ctx).body) for key in before_reads}

    print(f"\n{'route (B calls with A ids)':72} {'status':>6} error")
    for method, path, status, error in sorted(matrix, key=lambda row: (row[1], row[0])):
        print(f"{method + ' ' + path:72} {status:>6} {error}")
    print(f"tenant matrix: {len(operations)} operations, {calls} calls, {len(leaks)} leaks")

    assert calls == len(operations) > 0
    assert leaks == [], "\n".join(map(str, leaks))
    assert after == before, "org B's calls changed org A's data"
    assert after_reads == before_reads
