"""The AI tutor: in-class questions grounded in the class, SSE streaming, class summaries."""
