"""``python -m local_stack.moto_service --port 0``: a moto server (S3, SQS, DynamoDB) in a process of its own.

Its first stdout line is ``ready <endpoint url>`` (it may have picked a free port); SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from local_stack.lambda_runtime import serve_until_signalled


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack.moto_service", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    from moto.server import ThreadedMotoServer  # heavy import: only in this process

    from local_stack.moto_fidelity import atomic_dynamodb_writes

    atomic_dynamodb_writes()  # conditional writes as DynamoDB applies them: one item write at a time

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        serve_until_signalled(f"ready http://{host}:{port}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
