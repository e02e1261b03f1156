"""Verriflo's AI package: model providers, embeddings and retrieval, speech, images and metering.

Shared by the AI API (`functions/ai_agent`) and the AI tutor (`functions/ai_tutor`); heavy libraries
(onnxruntime, faster-whisper, rapidocr, matplotlib) are imported on first use only. The interface:

- `providers.provider()` -> a `Provider`; `provider.stream(GenerationRequest(question, history,
  passages, grounded, system, max_tokens, context_note))` yields `TextDelta`s, then one `Usage`;
  failures raise `ProviderError` (mid-stream too). `providers.SYSTEM_PROMPT` is the default system text.
- `knowledge.create_base / add_document / get_document / list_documents / delete_document /
  search(org_id, kb_ids, query)` -> `Passage`s (text, score, knowledge_base_id, document_id, title,
  chunk, page), org-scoped (`documents` chunks text by section and a PDF by page and section, whole
  sentences; `kb_store` keeps them as typed records: `Base`, `StoredDocument`, `StoredChunk`);
  a room's class material can be its own knowledge base. `add_document` embeds a
  small document at once (`ready`) and queues a large one (`processing`) for `ingest_queued`, the
  worker's step (functions/ai_ingest); `uploads.DocumentUpload` is every route's one upload model
  (its `content_bytes` the one check) and `uploads.decode_base64` the one size-checked decoding.
- `speech.transcribe(bytes) -> Transcript`, `speech.synthesize(text, voice) -> MP3 bytes`,
  `speech.sniff_audio(bytes)` (415 for anything but WAV/MP3/WebM/Ogg).
- `images.check_image`, `images.read_image`, `images.chart_spec`, `images.render_chart`.
- `metering.require_credits(org_id)` before a model call (402), `metering.meter(org_id, service,
  entry_id, usage, meta, room_id)` after it (exactly once per entry id).
- `outcome.failure(exc)` -> the error event's code and message of an answer that failed mid-stream;
  `metering.meter(..., delivered=True)` debits a delivered answer (a ledger failure is logged, not raised).
- `hints.hint(passage, question, level)`: the tutor's hint ladder (4 levels, the answer only at the last).
- `embeddings.count_tokens(text)` where a provider reports no usage.
"""
