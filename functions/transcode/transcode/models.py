"""The chunked path's job: the state machine's input, handed to every task (`transcode.steps`)."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from typing import Any

from pydantic import BaseModel, ConfigDict

from transcode.pipeline import Probe, Rung


class ChunkJob(BaseModel):
    """The chunked path's input, passed through the state machine."""

    model_config = ConfigDict(defer_build=True)

    org_id: str
    video_id: str
    claimant: str
    bucket: str
    key: str
    duration_s: float
    has_audio: bool
    width: int
    height: int
    fps: float
    rungs: list[dict[str, Any]]
    chunks: list[dict[str, float]]

    def probe(self) -> Probe:
        """The source as the first probe saw it."""
        return Probe(
            duration_s=self.duration_s,
            width=self.width,
            height=self.height,
            fps=self.fps,
            has_audio=self.has_audio,
            format_name="",
            video_codec="",
        )

    def ladder(self) -> list[Rung]:
        """The planned rungs."""
        return [Rung(**r) for r in self.rungs]
