"""Bedrock embeddings (Titan Text Embeddings v2 through `invoke_model`), against a local endpoint that
speaks the Bedrock runtime InvokeModel wire protocol (botocore with the endpoint from the environment,
as in production), and a knowledge base's promise to stay with the embedding it was built with."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from ai_agent import handler
from ai_support import (
    ai_env,  # noqa: F401 - an autouse fixture
    grant,
    lines,
)
from support import api_event, call
from verriflo.errors import Conflict, UpstreamError
from verriflo_ai import embeddings, kb_store, knowledge
from verriflo_ai import settings as ai_settings_module

TITAN = "amazon.titan-embed-text-v2:0"
NOTES = """# Cells
The mitochondria is the powerhouse of the cell: it makes ATP, the energy cells use.

# Plants
Photosynthesis happens in the chloroplasts and turns sunlight into sugar.
"""


@cache
def _projection(dimension: int) -> np.ndarray:
    return np.random.default_rng(7).standard_normal((embeddings.DIMENSION, dimension)).astype(np.float32)


class TitanStandIn(BaseHTTPRequestHandler):
    """`POST /model/<modelId>/invoke` as Bedrock answers it for Titan Text Embeddings v2. The vectors
    are real sentence embeddings (the local MiniLM) under a fixed random projection to the requested
    length, so similar texts stay similar, as with Titan."""

    seen: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "body": body, "accept": self.headers.get("Accept")})
        if body.get("dimensions", 1024) not in (256, 512, 1024) or "POISON" in body.get("inputText", ""):
            self._send(
                400,
                {"message": "Malformed input request, please reformat your input and try again."},
                {
                    "x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
                },
            )
            return
        local = embeddings._local().embed([body["inputText"]])[0]
        vector = local @ _projection(body.get("dimensions", 1024))
        if body.get("normalize", True):
            vector = vector / np.linalg.norm(vector)
        tokens = len(body["inputText"].split())
        self._send(
            200,
            {"embedding": [float(x) for x in vector], "inputTextTokenCount": tokens},
            {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)},
        )


@pytest.fixture
def titan(aws_env, monkeypatch) -> Iterator[type[TitanStandIn]]:
    import moto
    from verriflo import aws

    server = ThreadingHTTPServer(("127.0.0.1", 0), TitanStandIn)
    TitanStandIn.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{server.server_address[1]}")
    aws.reset_clients()
    with moto.mock_aws(config={"core": {"passthrough": {"urls": [r"http://127\.0\.0\.1:\d+/.*"]}}}):
        yield TitanStandIn
    aws.reset_clients()
    server.shutdown()
    server.server_close()


def use_embedding(monkeypatch, provider: str, dimensions: int = 1024) -> None:
    monkeypatch.setenv("AI_EMBEDDING_PROVIDER", provider)
    monkeypatch.setenv("AI_BEDROCK_EMBEDDING_DIMENSIONS", str(dimensions))
    ai_settings_module.reset_settings()


def api(org, ctx, name, **kwargs):
    return call(handler.handler, api_event(name, headers=org.headers, **kwargs), ctx)


def add_text(org, ctx, kb: str, content: str):
    return api(
        org,
        ctx,
        "ai_agent/add_document.json",
        path=f"/v1/ai-agent/knowledge-bases/{kb}/documents",
        path_params={"kb_id": kb},
        body={"title": "Notes", "contentType": "text/plain", "content": content},
    )


def test_titan_embeddings_over_the_invoke_model_wire(titan, monkeypatch):
    use_embedding(monkeypatch, "bedrock", 256)
    model = embeddings.embedder()
    assert (model.model_id, model.dimension) == (TITAN, 256)
    vectors = model.embed(["Where is ATP made?", "The mitochondria makes ATP.", "Chloroplasts use light."])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # the question is nearer its answer
    sent = titan.seen[0]
    assert sent["path"] == "/model/amazon.titan-embed-text-v2%3A0/invoke"  # the model id, URL-encoded
    assert sent["accept"] == "application/json"
    assert {"inputText": "Where is ATP made?", "dimensions": 256, "normalize": True} in [
        s["body"] for s in titan.seen
    ]  # one call per text (Titan's request shape), a few at a time
    assert len(titan.seen) == 3


def test_a_knowledge_base_built_with_titan_answers_through_the_api(titan, org, lambda_context, monkeypatch):
    use_embedding(monkeypatch, "bedrock", 512)
    grant(org.id)
    created = api(org, lambda_context, "ai_agent/create_kb.json", body={"name": "Biology"})
    assert created.status == 201, created.body
    assert created.data["embeddingModel"] == TITAN and created.data["embeddingDimension"] == 512
    kb = created.data["knowledgeBaseId"]
    added = knowledge.add_document(org.id, kb, "Notes", NOTES.encode(), "text/markdown")
    assert added.chunk_count >= 1
    reply = api(
        org,
        lambda_context,
        "ai_agent/chat_stream.json",
        body={"message": "Where do plants turn sunlight into sugar?", "knowledgeBaseIds": [kb]},
    )
    assert reply.status == 200, reply.body
    events = lines(reply.body)
    assert "chloroplasts" in "".join(e.get("text", "") for e in events if e["type"] == "text")
    assert any(e["type"] == "citation" for e in events)
    assert all(s["body"]["dimensions"] == 512 for s in titan.seen)


def test_a_base_is_refused_with_another_embedding_than_its_own(titan, org, lambda_context, monkeypatch):
    grant(org.id)
    use_embedding(monkeypatch, "local")
    kb = knowledge.create_base(org.id, "Built locally").knowledge_base_id
    knowledge.add_document(org.id, kb, "Notes", NOTES.encode(), "text/markdown")

    use_embedding(monkeypatch, "bedrock", 1024)
    for refused in (
        api(
            org,
            lambda_context,
            "ai_agent/chat.json",
            body={"message": "Where is ATP made?", "knowledgeBaseIds": [kb]},
        ),
        add_text(org, lambda_context, kb, "Ribosomes make proteins."),
    ):
        assert refused.status == 409, refused.body
        assert "all-MiniLM-L6-v2" in refused.body["message"] and TITAN in refused.body["message"]
    assert titan.seen == []  # refused before anything was embedded
    assert kb_store.get_base(org.id, kb).document_count == 1

    # Titan at another length is another embedding too.
    use_embedding(monkeypatch, "bedrock", 256)
    titan_kb = knowledge.create_base(org.id, "Titan 256").knowledge_base_id
    use_embedding(monkeypatch, "bedrock", 1024)
    with pytest.raises(Conflict, match="256 dimensions"):
        knowledge.search(org.id, [titan_kb], "ATP")
    # Configured as it was built, it works again.
    use_embedding(monkeypatch, "local")
    assert knowledge.search(org.id, [kb], "Where is ATP made?")


def test_a_failing_embedding_model_is_502_and_stores_nothing(titan, org, lambda_context, monkeypatch):
    use_embedding(monkeypatch, "bedrock", 256)
    kb = knowledge.create_base(org.id, "Biology").knowledge_base_id
    with pytest.raises(UpstreamError, match="embedding model failed"):
        knowledge.add_document(org.id, kb, "Bad", b"Cells divide. POISON pill.", "text/plain")
    reply = add_text(org, lambda_context, kb, "POISON")
    assert reply.status == 502, reply.body
    base = kb_store.get_base(org.id, kb)
    assert base.document_count == 0 and base.chunk_count == 0
    assert list(kb_store.iter_chunks(org.id, kb)) == []
