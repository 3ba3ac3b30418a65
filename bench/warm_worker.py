"""The queue worker for the throughput benchmark's worker service (``handler="bench.warm_worker:lambda_handler"``).

It is ``sqs_worker.app.lambda_handler`` unchanged, with the per-container worker (settings, AWS clients, the model
chain) built when the poller imports this module, before it starts polling, so that a timed run does not
include the first invocation's set-up. (The in-process benchmark ran one untimed batch for this; a worker
service is a fresh process per run.) Only the handler module's public functions are used.
"""

from __future__ import annotations

from sqs_worker import app

app.worker()

lambda_handler = app.lambda_handler
