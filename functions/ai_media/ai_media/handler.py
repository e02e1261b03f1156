"""The offline media capabilities of the AI package, each behind its own small function, invoked
synchronously (Lambda `invoke`) by the AI API and the AI tutor through `verriflo_ai.remote_media`:

- `transcribe` (AiSpeechFunction): base64 audio -> text (faster-whisper tiny.en);
- `read_image` (AiVisionFunction): base64 image -> the text it shows (RapidOCR);
- `render_chart` (AiChartsFunction): labels and values -> a PNG bar chart (matplotlib).

They are not on the API: only the callers' roles may invoke them. A refusal (undecodable audio, too
long, an unreadable image) comes back as `{"error": {"status", "code", "message"}}` and the caller
raises the same error, so the client sees what it would have seen in-process.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from verriflo.errors import ServiceUnavailable, ValidationFailed, VerrifloError
from verriflo.observability import logger
from verriflo_ai import images, speech
from verriflo_ai.uploads import decode_base64


def _payload(event: dict[str, Any], field: str) -> bytes:
    return decode_base64(event.get(field), f"'{field}'")  # the callers checked the size limits


def _answer(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return work()
    except VerrifloError as exc:
        return {"error": {"status": exc.status, "code": exc.code, "message": exc.message}}
    except speech.SpeechError as exc:
        return {"error": {"status": 503, "code": ServiceUnavailable.code, "message": str(exc)}}


def transcribe(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """{"audio": base64, "maxSeconds"?: the caller's length limit} -> {"text", "durationS", "language"}."""

    def work() -> dict[str, Any]:
        limit = event.get("maxSeconds")
        if limit is not None and (not isinstance(limit, int | float) or limit <= 0):
            raise ValidationFailed("'maxSeconds' must be a positive number.")
        said = speech.transcribe(_payload(event, "audio"), max_seconds=limit)
        logger.info("ai_media.transcribed", extra={"duration_s": round(said.duration_s, 2)})
        return {"text": said.text, "durationS": said.duration_s, "language": said.language}

    return _answer(work)


def read_image(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """{"image": base64, "mimeType"} -> {"text"}."""

    def work() -> dict[str, Any]:
        data = _payload(event, "image")
        return {"text": images.read_image(data, images.check_image(data, event.get("mimeType")))}

    return _answer(work)


def render_chart(event: dict[str, Any], _context: Any = None) -> dict[str, Any]:
    """{"title", "labels", "values"} -> {"image": base64 PNG}."""

    def work() -> dict[str, Any]:
        try:
            spec = images.ChartSpec(
                str(event.get("title", ""))[:120],
                tuple(str(x) for x in event["labels"]),
                tuple(float(x) for x in event["values"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationFailed("A chart needs labels and numeric values.") from exc
        if not 0 < len(spec.labels) == len(spec.values) <= 50:
            raise ValidationFailed("A chart needs 1 to 50 labels, one value each.")
        picture = images.render_chart(spec)
        if picture is None:
            raise ServiceUnavailable("Charts are not installed in this function.")
        return {"image": base64.b64encode(picture).decode()}

    return _answer(work)
