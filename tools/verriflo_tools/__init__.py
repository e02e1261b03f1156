"""Operators' and developers' tools: the `verriflo` CLI, the OpenAPI build step, the local stack.

Installed in the dev venv only (pyproject), never in a Lambda layer: here the tools may use
libraries the functions must not carry (httpx, rich).
"""
