"""Live classrooms: rooms, join tokens, participants, recordings and LiveKit webhooks."""
