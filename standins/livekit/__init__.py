"""A LiveKit stand-in: Twirp RoomService and Egress, signed webhooks, simulated participants and egress.

No LiveKit server can run here, so this speaks the parts of LiveKit's server API the project uses,
with LiveKit's own messages (`livekit-protocol`) and token checks (`livekit-api`): the rooms
function talks to it exactly as it talks to LiveKit Cloud. See `server.py`.
"""

from __future__ import annotations

from standins.livekit.server import StandIn

__all__ = ["StandIn"]
