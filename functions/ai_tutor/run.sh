#!/bin/sh
# Entry point of the tutor's streaming function in AWS: the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER)
# runs this script and proxies each invocation to uvicorn, streaming each SSE event as it is written.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${PYTHONPATH}"
exec python3 -m uvicorn --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" --no-access-log --lifespan on \
  ai_tutor.streaming:app
