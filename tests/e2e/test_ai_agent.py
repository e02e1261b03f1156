"""The AI API on the deployed stack: API Gateway (LocalStack) -> the AI function (common + AI
layers) -> the real stores, offline models and all. Under LocalStack the NDJSON stream arrives
buffered through API Gateway, with the same framing as the streamed answer in AWS."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

KEY_HEADER = "VF-ORG-ID"
NOTES = """# Cells
The mitochondria is the powerhouse of the cell: it turns glucose and oxygen into ATP.

# Plants
Photosynthesis happens in the chloroplasts, using light energy.
"""


def test_knowledge_base_chat_streams_grounded_ndjson_and_keeps_history(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    headers = {KEY_HEADER: demo_key}
    kb = http.post(f"{api_url}/v1/ai-agent/knowledge-bases", headers=headers, json={"name": "e2e biology"})
    assert kb.status_code == 201, kb.text
    kb_id = kb.json()["data"]["knowledgeBaseId"]
    doc = http.post(
        f"{api_url}/v1/ai-agent/knowledge-bases/{kb_id}/documents",
        headers=headers,
        json={"title": "Notes", "contentType": "text/markdown", "content": NOTES},
    )
    assert doc.status_code == 201, doc.text

    chat_id = f"e2e-{uuid.uuid4().hex[:8]}"
    stream = http.post(
        f"{api_url}/v1/ai-agent/chat/stream",
        headers=headers,
        json={"chatId": chat_id, "message": "Where is ATP made?", "knowledgeBaseIds": [kb_id]},
    )
    assert stream.status_code == 200, stream.text
    assert stream.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in stream.text.splitlines()]
    assert events[-1] == {"type": "done"} and events[-2]["type"] == "usage"
    assert "mitochondria" in "".join(e.get("text", "") for e in events if e["type"] == "text")
    assert any(e["type"] == "citation" for e in events)

    history = http.get(f"{api_url}/v1/ai-agent/chats/{chat_id}", headers=headers)
    assert history.status_code == 200, history.text
    assert [m["role"] for m in history.json()["data"]["messages"]] == ["user", "assistant"]

    usage = http.get(f"{api_url}/v1/ai-agent/usage/summary", headers=headers)
    assert usage.status_code == 200 and usage.json()["data"]["breakdown"]["aiAgent"]["requests"] >= 1


def test_ai_routes_refuse_without_a_key_and_bad_input_before_any_model(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    no_key = http.post(f"{api_url}/v1/ai-agent/chat/stream", json={"message": "hi"})
    assert no_key.status_code == 401 and no_key.json()["error"] == "UNAUTHORIZED"
    bad = http.post(
        f"{api_url}/v1/ai-agent/chat",
        headers={KEY_HEADER: demo_key},
        json={"message": "hi", "audio": "not base64!!"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "VALIDATION_ERROR"
    internal = http.post(f"{api_url}/api/v1/generate", json={"orgId": "x", "message": "hi"})
    assert internal.status_code == 403 and internal.json()["error"] == "FORBIDDEN"
    missing = http.get(
        f"{api_url}/v1/ai-agent/knowledge-bases/kb_{uuid.uuid4().hex}", headers={KEY_HEADER: demo_key}
    )
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"
