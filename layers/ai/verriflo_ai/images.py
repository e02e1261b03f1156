"""Images in and out: reading an attached image (RapidOCR offline, a Bedrock vision model in AWS)
and drawing a chart (matplotlib) when an answer carries numbers worth plotting.
"""

from __future__ import annotations

import io
import json
import re
import threading
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

from verriflo.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

from verriflo_ai.settings import ai_settings

IMAGE_TYPES = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/webp": b"RIFF",
    "image/gif": b"GIF8",
}
_ocr_lock = threading.Lock()


def check_image(data: bytes, mime: str | None) -> str:
    """The image's MIME type, checked against its magic bytes; 415 for anything else."""
    mime = (mime or "").lower().strip()
    if mime == "image/jpg":
        mime = "image/jpeg"
    if mime not in IMAGE_TYPES:
        raise UnsupportedMediaType(f"imageMimeType must be one of: {', '.join(sorted(IMAGE_TYPES))}.")
    if not data.startswith(IMAGE_TYPES[mime]) or (mime == "image/webp" and data[8:12] != b"WEBP"):
        raise ValidationFailed(f"The image is not a valid {mime} file.")
    return mime


@cache
def _ocr() -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:
        from verriflo_ai.speech import _not_installed

        raise _not_installed("Offline image reading") from exc

    return RapidOCR()


def read_image(data: bytes, mime: str) -> str:
    """The text the image shows (OCR offline; a Bedrock vision model describes it in AWS)."""
    settings = ai_settings()
    if settings.vision_provider == "aws":
        return _describe_with_bedrock(data, mime)
    if settings.vision_provider == "lambda":
        import base64

        from verriflo_ai import remote_media

        payload = {"image": base64.b64encode(data).decode(), "mimeType": mime}
        read = remote_media.invoke(settings.vision_function, payload, "Image reading")
        return str(read.get("text", "")).strip()
    import numpy as np

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        from verriflo_ai.speech import _not_installed

        raise _not_installed("Offline image reading") from exc

    cap = settings.max_image_pixels
    # Pillow's own guard as a backstop: it refuses (DecompressionBombError) past twice this.
    Image.MAX_IMAGE_PIXELS = cap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused just below
            with Image.open(io.BytesIO(data)) as opened:  # reads the header only: no pixels yet
                width, height = opened.size
                if width * height > cap:
                    raise _too_many_pixels(width, height, cap)
                image = np.asarray(opened.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"Images are limited to {cap} pixels.") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValidationFailed("The image cannot be decoded.") from exc
    with _ocr_lock:
        result = _ocr()(image)
    return " ".join(result.txts or ()).strip()


def _too_many_pixels(width: int, height: int, cap: int) -> PayloadTooLarge:
    # A few KB of PNG can declare 50000 x 50000 pixels (7.5 GB decoded): refused from the header.
    return PayloadTooLarge(f"The image is {width} x {height} pixels; images are limited to {cap} pixels.")


def _describe_with_bedrock(data: bytes, mime: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError
    from verriflo import aws

    from verriflo_ai.providers import ProviderError

    fmt = mime.split("/", 1)[1]
    try:
        response = aws.client("bedrock-runtime").converse(
            modelId=ai_settings().bedrock_model_id,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"image": {"format": fmt, "source": {"bytes": data}}},
                        {"text": "Transcribe any text in this image, then describe it briefly."},
                    ],
                }
            ],
            inferenceConfig={"maxTokens": 400},
        )
    except (BotoCoreError, ClientError) as exc:
        raise ProviderError("The vision model failed.") from exc
    return " ".join(b.get("text", "") for b in response["output"]["message"]["content"]).strip()


# --- charts -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """A bar chart: labels and their values."""

    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]


_CHART_BLOCK = re.compile(r"```chart\s*(\{.*?\})\s*```", re.S)
_PAIR = re.compile(r"^[\s*\-\d.)]*([A-Za-z][\w \-/&]{0,40}?)\s*[:=\-|]\s*(-?\d+(?:\.\d+)?)\s*%?\s*$", re.M)
_ASKS_FOR_CHART = re.compile(r"\b(chart|graph|plot|diagram|visuali[sz]e)\b", re.I)


def wants_chart(question: str) -> bool:
    """Whether the user asked for a chart, graph, plot or diagram."""
    return bool(_ASKS_FOR_CHART.search(question))


def chart_spec(answer: str, question: str) -> ChartSpec | None:
    """A chart the answer calls for: a ```chart``` block a model wrote, or label: number lines when asked."""
    block = _CHART_BLOCK.search(answer)
    if block:
        try:
            spec = json.loads(block.group(1))
            labels = tuple(str(x) for x in spec["labels"])
            values = tuple(float(x) for x in spec["values"])
        except (ValueError, KeyError, TypeError):
            return None
        if 0 < len(labels) == len(values) <= 50:
            return ChartSpec(str(spec.get("title", ""))[:120], labels, values)
        return None
    if not wants_chart(question):
        return None
    pairs = _PAIR.findall(answer)
    if len(pairs) < 2:
        return None
    pairs = pairs[:50]
    return ChartSpec("", tuple(p[0].strip() for p in pairs), tuple(float(p[1]) for p in pairs))


def render_chart(spec: ChartSpec) -> bytes | None:
    """A PNG bar chart (matplotlib here, or AiChartsFunction); None when it cannot be drawn (logged),
    since the answer stands without its picture."""
    settings = ai_settings()
    if settings.chart_provider == "lambda":
        import base64

        from verriflo.errors import VerrifloError
        from verriflo.observability import logger

        from verriflo_ai import remote_media

        payload = {"title": spec.title, "labels": list(spec.labels), "values": list(spec.values)}
        try:
            drawn = remote_media.invoke(settings.chart_function, payload, "Chart drawing")
            return base64.b64decode(drawn["image"])
        except (VerrifloError, KeyError, ValueError) as exc:
            logger.warning("ai.chart_unavailable", extra={"reason": str(exc)})
            return None
    try:
        import matplotlib
    except ImportError:
        from verriflo.observability import logger

        logger.warning("ai.chart_unavailable", extra={"reason": "matplotlib not installed"})
        return None

    matplotlib.use("Agg")  # no display in a function
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3.6), dpi=100)
    axes = figure.subplots()
    axes.bar(range(len(spec.values)), spec.values, color="#3b6fd8")
    axes.set_xticks(
        range(len(spec.labels)),
        spec.labels,
        rotation=30 if len(spec.labels) > 5 else 0,
        ha="right" if len(spec.labels) > 5 else "center",
    )
    if spec.title:
        axes.set_title(spec.title)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
