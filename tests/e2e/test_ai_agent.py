"""The AI API on the deployed stack: API Gateway (LocalStack) -> the AI function (common + AI
layers) -> the real stores, offline models and all. Under LocalStack the NDJSON stream arrives
buffered through API Gateway, with the same framing as the streamed answer in AWS."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
from ai_support import PDF_TOPICS, b64, topics_pdf

pytestmark = pytest.mark.e2e

KEY_HEADER = "VF-ORG-ID"
CHAT_ID = r"[A-Za-z0-9_-]{1,100}"  # what a client may send back as chatId
NOTES = """# Cells
The mitochondria is the powerhouse of the cell: it turns glucose and oxygen into ATP.

# Plants
Photosynthesis happens in the chloroplasts, using light energy.
"""


def knowledge_base_with_notes(http: httpx.Client, api_url: str, headers: dict[str, str], name: str) -> str:
    """A new knowledge base holding NOTES; its id."""
    kb = http.post(f"{api_url}/v1/ai-agent/knowledge-bases", headers=headers, json={"name": name})
    assert kb.status_code == 201, kb.text
    kb_id = kb.json()["data"]["knowledgeBaseId"]
    doc = http.post(
        f"{api_url}/v1/ai-agent/knowledge-bases/{kb_id}/documents",
        headers=headers,
        json={"title": "Notes", "contentType": "text/markdown", "content": NOTES},
    )
    assert doc.status_code == 201, doc.text
    return kb_id


def test_knowledge_base_chat_streams_grounded_ndjson_and_keeps_history(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    headers = {KEY_HEADER: demo_key}
    kb_id = knowledge_base_with_notes(http, api_url, headers, "e2e biology")

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


def test_a_pdf_is_cited_by_page_one_passage_per_topic(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    headers = {KEY_HEADER: demo_key}
    kb = http.post(f"{api_url}/v1/ai-agent/knowledge-bases", headers=headers, json={"name": "e2e handout"})
    assert kb.status_code == 201, kb.text
    kb_id = kb.json()["data"]["knowledgeBaseId"]
    doc = http.post(
        f"{api_url}/v1/ai-agent/knowledge-bases/{kb_id}/documents",
        headers=headers,
        json={"title": "Handout", "contentType": "application/pdf", "contentBase64": b64(topics_pdf())},
    )
    assert doc.status_code == 201 and doc.json()["data"]["chunkCount"] == len(PDF_TOPICS), doc.text
    for page, (heading, _, asked) in enumerate(PDF_TOPICS, 1):
        reply = http.post(
            f"{api_url}/v1/ai-agent/chat",
            headers=headers,
            json={"message": asked, "knowledgeBaseIds": [kb_id]},
        )
        assert reply.status_code == 200, reply.text
        citations = reply.json()["data"]["citations"]
        assert [(c["title"], c["page"]) for c in citations] == [(f"Handout > {heading}", page)]


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


def test_voice_and_images_are_heard_and_read_by_the_deployed_media_functions(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    """Audio in (espeak-ng speech) and an image with text, through the API: the AI function hands them
    to AiSpeechFunction and AiVisionFunction (their own layers) with Lambda `invoke`."""
    from ai_support import b64, png_with_text, spoken_wav

    headers = {KEY_HEADER: demo_key}
    kb_id = knowledge_base_with_notes(http, api_url, headers, "e2e media")

    chat_id = f"e2e-voice-{uuid.uuid4().hex[:8]}"
    heard = http.post(
        f"{api_url}/v1/ai-agent/chat",
        headers=headers,
        json={
            "chatId": chat_id,
            "audio": b64(spoken_wav("Tell me about sunlight and plants.")),
            "knowledgeBaseIds": [kb_id],
        },
    )
    assert heard.status_code == 200, heard.text
    assert "sunlight and plants" in heard.json()["data"]["transcript"].lower()
    assert "chloroplasts" in heard.json()["data"]["text"]

    read = http.post(
        f"{api_url}/v1/ai-agent/chat",
        headers=headers,
        json={
            "image": b64(png_with_text("Where is ATP made?")),
            "imageMimeType": "image/png",
            "knowledgeBaseIds": [kb_id],
        },
    )
    assert read.status_code == 200, read.text
    assert "mitochondria" in read.json()["data"]["text"]

    # Refusals made inside the speech function reach the client unchanged.
    undecodable = http.post(
        f"{api_url}/v1/ai-agent/chat",
        headers=headers,
        json={"audio": b64(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64)},
    )
    assert undecodable.status_code == 400 and "cannot be decoded" in undecodable.json()["message"]

    chats = http.get(f"{api_url}/v1/ai-agent/chats", headers=headers, params={"limit": 100})
    assert chats.status_code == 200, chats.text
    listed = {c["chatId"]: c for c in chats.json()["data"]["items"]}
    assert listed[chat_id]["turns"] == 1 and "sunlight and plants" in listed[chat_id]["title"].lower()


def test_the_charts_function_draws_a_png(stack_aws) -> None:
    """AiChartsFunction (common + charts layers, under Lambda's 250 MB) as the AI function invokes it."""
    import base64

    client = stack_aws("lambda")
    names = [
        f["FunctionName"]
        for page in client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f["FunctionName"].endswith("-ai-media-charts")
    ]
    assert len(names) == 1, names
    reply = client.invoke(
        FunctionName=names[0],
        Payload=json.dumps({"title": "Averages", "labels": ["Maths", "Science"], "values": [81, 74]}),
    )
    assert "FunctionError" not in reply, reply["Payload"].read()
    png = base64.b64decode(json.loads(reply["Payload"].read())["image"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_a_large_document_is_ingested_by_the_deployed_worker_and_polled_to_ready(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    """Too long to embed in the request: 202, then AiIngestQueue -> AiIngestFunction (SQS event source
    mapping on LocalStack) embeds it, and polling the document shows it `ready` and searchable."""
    import time

    headers = {KEY_HEADER: demo_key}
    kb = http.post(f"{api_url}/v1/ai-agent/knowledge-bases", headers=headers, json={"name": "e2e long"})
    kb_id = kb.json()["data"]["knowledgeBaseId"]
    fact = "The lighthouse keeper of Port Ellery recorded every storm in a blue ledger."
    text = (
        "\n\n".join(
            f"# Chapter {n}\n"
            + " ".join(f"Chapter {n} line {i} tells of tides and harbour traffic." for i in range(60))
            for n in range(10)
        )
        + f"\n\n# Records\n{fact}\n"
    )
    added = http.post(
        f"{api_url}/v1/ai-agent/knowledge-bases/{kb_id}/documents",
        headers=headers,
        json={"title": "Harbour log", "contentType": "text/markdown", "content": text},
    )
    assert added.status_code == 202, added.text
    doc = added.json()["data"]
    assert doc["status"] == "processing" and doc["chunkCount"] > 48
    url = f"{api_url}/v1/ai-agent/knowledge-bases/{kb_id}/documents/{doc['documentId']}"
    deadline = time.monotonic() + 300  # a cold worker loads the embedding model first
    while (polled := http.get(url, headers=headers).json()["data"])["status"] == "processing":
        assert time.monotonic() < deadline, polled
        time.sleep(2)
    assert (
        polled["status"] == "ready" and polled["embeddedChunks"] == polled["chunkCount"] == doc["chunkCount"]
    )
    base = http.get(f"{api_url}/v1/ai-agent/knowledge-bases/{kb_id}", headers=headers).json()["data"]
    assert (base["documentCount"], base["chunkCount"]) == (1, doc["chunkCount"])
    answer = http.post(
        f"{api_url}/v1/ai-agent/chat",
        headers=headers,
        json={"message": "Who recorded every storm in a ledger?", "knowledgeBaseIds": [kb_id]},
    )
    assert answer.status_code == 200 and fact in answer.json()["data"]["text"], answer.text


def test_long_audio_and_huge_images_are_refused_by_the_deployed_media_functions(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    from ai_support import b64, long_opus, png_bomb

    headers = {KEY_HEADER: demo_key}
    long = http.post(f"{api_url}/v1/ai-agent/chat", headers=headers, json={"audio": b64(long_opus(90))})
    assert long.status_code == 400 and "limited to 120 seconds" in long.json()["message"], long.text
    bomb = http.post(
        f"{api_url}/v1/ai-agent/chat",
        headers=headers,
        json={"image": b64(png_bomb()), "imageMimeType": "image/png"},
    )
    assert bomb.status_code == 413 and bomb.json()["error"] == "PAYLOAD_TOO_LARGE", bomb.text


def _ndjson(reply: httpx.Response) -> list[dict]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in reply.text.splitlines()]


def _said(events: list[dict]) -> str:
    return "".join(e["text"] for e in events if e["type"] == "text")


def test_a_chat_sent_without_chat_id_is_started_its_id_returned_and_its_history_readable(
    http: httpx.Client, api_url: str, demo_key: str, verriflo_cli
) -> None:
    headers = {KEY_HEADER: demo_key}
    kb_id = knowledge_base_with_notes(http, api_url, headers, "e2e new chats")
    asked = {"message": "Where is ATP made?", "knowledgeBaseIds": [kb_id]}

    whole = http.post(f"{api_url}/v1/ai-agent/chat", headers=headers, json=asked)
    assert whole.status_code == 200, whole.text
    started, answer = whole.json()["data"]["chatId"], whole.json()["data"]["text"]
    assert re.fullmatch(CHAT_ID, started) and "mitochondria" in answer
    events = _ndjson(http.post(f"{api_url}/v1/ai-agent/chat/stream", headers=headers, json=asked))
    assert events[0]["type"] == "chat" and set(events[0]) == {"type", "chatId"}  # the id comes first
    streamed = events[0]["chatId"]
    assert re.fullmatch(CHAT_ID, streamed) and streamed != started
    assert events[-1] == {"type": "done"} and "mitochondria" in _said(events)

    for chat_id, said in ((started, answer), (streamed, _said(events))):
        read = http.get(f"{api_url}/v1/ai-agent/chats/{chat_id}", headers=headers)
        assert read.status_code == 200, read.text
        assert read.json()["data"]["chatId"] == chat_id
        # The history keeps the answer as the whole answer gives it (trimmed), streamed or not.
        messages = [(m["role"], m["text"]) for m in read.json()["data"]["messages"]]
        assert messages == [("user", "Where is ATP made?"), ("assistant", said.strip())]

    follow_up = {"chatId": started, "message": "Where is photosynthesis?", "knowledgeBaseIds": [kb_id]}
    again = http.post(f"{api_url}/v1/ai-agent/chat", headers=headers, json=follow_up)
    assert again.status_code == 200 and again.json()["data"]["chatId"] == started, again.text
    read = http.get(f"{api_url}/v1/ai-agent/chats/{started}", headers=headers).json()["data"]
    assert [m["role"] for m in read["messages"]] == ["user", "assistant", "user", "assistant"]
    assert read["messages"][2]["text"] == follow_up["message"]
    listed = http.get(f"{api_url}/v1/ai-agent/chats", headers=headers, params={"limit": 100})
    assert listed.status_code == 200, listed.text
    turns = {c["chatId"]: c["turns"] for c in listed.json()["data"]["items"]}
    assert (turns[started], turns[streamed]) == (2, 1)

    other = verriflo_cli("org", "create", f"e2e-chats-{uuid.uuid4().hex[:8]}", "--credits", "100")
    stranger = http.get(f"{api_url}/v1/ai-agent/chats/{started}", headers={KEY_HEADER: other["apiKey"]})
    assert stranger.status_code == 404 and stranger.json()["error"] == "NOT_FOUND", stranger.text


def test_an_image_sent_with_a_message_informs_the_answer_beside_the_message(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    """The words alone find nothing; with the image's text they find the passage it names."""
    from ai_support import png_with_text

    headers = {KEY_HEADER: demo_key}
    kb_id = knowledge_base_with_notes(http, api_url, headers, "e2e image and words")
    asked = "Where does this happen?"
    alone = http.post(
        f"{api_url}/v1/ai-agent/chat", headers=headers, json={"message": asked, "knowledgeBaseIds": [kb_id]}
    )
    assert alone.status_code == 200 and "chloroplasts" not in alone.json()["data"]["text"], alone.text

    body = {
        "message": asked,
        "image": b64(png_with_text("Photosynthesis")),
        "imageMimeType": "image/png",
        "knowledgeBaseIds": [kb_id],
    }
    reply = http.post(f"{api_url}/v1/ai-agent/chat", headers=headers, json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert data["requestModality"] == "text+image" and "chloroplasts" in data["text"]
    assert data["citations"][0]["title"] == "Notes > Plants"  # the best match comes first
    # The chat keeps both, so a follow-up still knows what the image showed.
    history = http.get(f"{api_url}/v1/ai-agent/chats/{data['chatId']}", headers=headers)
    (user, _) = history.json()["data"]["messages"]
    assert asked in user["text"] and "photosynthesis" in user["text"].lower()

    events = _ndjson(http.post(f"{api_url}/v1/ai-agent/chat/stream", headers=headers, json=body))
    assert "chloroplasts" in _said(events)
    assert any(e["type"] == "citation" and "chloroplasts" in e["citation"]["text"] for e in events)


def test_a_streamed_voice_question_gets_the_transcript_line_of_the_whole_answer(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    from ai_support import spoken_wav

    headers = {KEY_HEADER: demo_key}
    kb_id = knowledge_base_with_notes(http, api_url, headers, "e2e streamed voice")
    body = {"audio": b64(spoken_wav("Tell me about sunlight and plants.")), "knowledgeBaseIds": [kb_id]}
    whole = http.post(f"{api_url}/v1/ai-agent/chat", headers=headers, json=body)
    assert whole.status_code == 200, whole.text
    transcript = whole.json()["data"]["transcript"]
    assert "sunlight and plants" in transcript.lower()

    events = _ndjson(http.post(f"{api_url}/v1/ai-agent/chat/stream", headers=headers, json=body))
    kinds = [e["type"] for e in events]
    (line,) = [e for e in events if e["type"] == "transcript"]
    assert line == {"type": "transcript", "transcript": transcript}  # the same words as the whole answer
    assert kinds.index("transcript") < kinds.index("text") and kinds[-2:] == ["usage", "done"]
    assert "chloroplasts" in _said(events)

    typed = _ndjson(
        http.post(
            f"{api_url}/v1/ai-agent/chat/stream",
            headers=headers,
            json={"message": "Tell me about sunlight and plants.", "knowledgeBaseIds": [kb_id]},
        )
    )
    assert "transcript" not in [e["type"] for e in typed]  # nothing was spoken
