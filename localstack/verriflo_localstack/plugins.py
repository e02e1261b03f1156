"""Plux entry points. Kept import-light: LocalStack scans these at start-up, so the executor's
module (which imports the Lambda service) loads only when the plugin is actually selected."""

from __future__ import annotations

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Selected with LAMBDA_RUNTIME_EXECUTOR=verriflo-process."""

    name = "verriflo-process"

    def load(self, *args, **kwargs):
        from verriflo_localstack import clients, lambda_logs, memtrace, threads
        from verriflo_localstack.executor import ProcessRuntimeExecutor

        memtrace.install()  # only when VERRIFLO_LOCALSTACK_TRACEMALLOC is set

        # before the first invocation: LocalStack would otherwise keep one thread (and its stack)
        # per invocation until it runs out of memory maps (threads.py says why)
        threads.install()
        # ...and every line every function ever logged, in memory (lambda_logs.py says why)
        lambda_logs.install()
        # ...and a boto3 client and an STS session per Step Functions task state (clients.py)
        clients.install()

        return ProcessRuntimeExecutor
