"""The local API gateway as a real server (waitress) on the local stack: strict framing (RFC 9112), a read timeout,
the usage plan with API Gateway's 429 bodies, and nosniff on its own answers. Raw sockets, as a hostile client
would send them; the stack here has a 2 s read timeout and a small daily quota so that both are reached quickly."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.config import StackConfig, StackEndpoints
from local_stack.stack import LocalStack
from local_stack.usage_plan import UsagePlan
from tests.local.local_stack_support import wait_until

READ_TIMEOUT = 2.0
QUOTA = 40
PLAN = UsagePlan(rate=5, burst=10, quota_per_day=QUOTA)
BODY = b'{"prompt": "a cat"}'


@pytest.fixture(autouse=True)
def aws_environment() -> None:
    """Overrides the suite's fake-AWS fixture: the stack sets the environment its handlers need."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = StackConfig(api_port=0, aws_port=0, bedrock_port=0, state_file=None, usage_plan=PLAN,
                         log_dir=tmp_path_factory.mktemp("gateway") / "logs", api_read_timeout_seconds=READ_TIMEOUT,
                         model_id="stability.stable-image-core-v1:1@us-west-2")  # fmt: skip
    with LocalStack(config) as running:
        yield running


@pytest.fixture
def endpoints(stack: LocalStack) -> StackEndpoints:
    assert stack.endpoints is not None
    time.sleep(2.1)  # a full token bucket for each test (5 a second, 10 at most): not synchronisation, the plan
    return stack.endpoints


def address(endpoints: StackEndpoints) -> tuple[str, int]:
    host, port = endpoints.api_url.split("/")[2].split(":")
    return host, int(port)


def exchange(endpoints: StackEndpoints, data: bytes, *, close_write: bool = True) -> bytes:
    """Send ``data``, then read until the server closes the connection."""
    with socket.create_connection(address(endpoints), timeout=30) as connection:
        connection.sendall(data)
        if close_write:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received


def parse(reply: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses in ``reply``, in order: status, headers (lower-case names), body."""
    responses = []
    while reply:
        head, _, rest = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        responses.append((int(lines[0].split()[1]), headers, rest[:length]))
        reply = rest[length:]
    return responses


def request(method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} /Prod{path} HTTP/1.1", "Host: local", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    if body and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


KEY = {"x-api-key": "local-api-key", "Content-Type": "application/json"}


def model_calls(stack: LocalStack) -> int:
    assert stack.emulator is not None
    return int(stack.emulator.stats()["requests"])


def test_a_truncated_body_is_never_processed(stack: LocalStack, endpoints: StackEndpoints) -> None:
    before = model_calls(stack)
    truncated = request("POST", "/generate-image", headers={**KEY, "Content-Length": "100"}) + BODY  # 19 of 100
    assert exchange(endpoints, truncated) == b""  # closed without an answer: the request never arrived whole
    assert model_calls(stack) == before


@pytest.mark.parametrize(
    ("transfer_encoding", "chunks", "status"),
    [("xchunked", b"", 501), ("chunked", b"1_4\r\n" + b"x" * 20 + b"\r\n0\r\n\r\n", 400),
     ("chunked", b"-5\r\nxxxxx\r\n0\r\n\r\n", 400), ("chunked", b"0x13\r\n" + BODY + b"\r\n0\r\n\r\n", 400),
     ("chunked, chunked", b"13\r\n" + BODY + b"\r\n0\r\n\r\n", 400)],
)  # fmt: skip
def test_malformed_framing_is_refused_with_api_gateways_json(
    stack: LocalStack, endpoints: StackEndpoints, transfer_encoding: str, chunks: bytes, status: int
) -> None:
    before = model_calls(stack)
    data = request("POST", "/generate-image", headers={**KEY, "Transfer-Encoding": transfer_encoding}) + chunks
    [(got, headers, body)] = parse(exchange(endpoints, data))
    assert got == status
    assert headers["x-content-type-options"] == "nosniff"
    assert json.loads(body)["message"]
    assert model_calls(stack) == before
    # The server is still whole: the next request is answered.
    [(next_status, _, _)] = parse(exchange(endpoints, request("GET", "/")))
    assert next_status == 200


def test_a_chunk_trailer_keeps_the_connection_in_step(endpoints: StackEndpoints) -> None:
    chunked = request("POST", "/jobs", headers={**KEY, "Transfer-Encoding": "chunked"})
    chunked += f"{len(BODY):x}\r\n".encode() + BODY + b"\r\n0\r\nX-Checksum: 1234\r\n\r\n"
    pipelined = chunked + request("GET", "/images", headers={**KEY, "Connection": "close"})
    replies = parse(exchange(endpoints, pipelined))
    assert [status for status, _, _ in replies] == [202, 200]
    assert json.loads(replies[0][2])["status"] == "queued"
    assert "images" in json.loads(replies[1][2])


def test_slow_clients_are_cut_off_after_the_read_timeout(endpoints: StackEndpoints) -> None:
    """Seven connections that trickle a request byte by byte (each byte within the idle timeout) are closed once
    READ_TIMEOUT has passed since their request began, not held."""
    started = time.monotonic()
    connections = [socket.create_connection(address(endpoints), timeout=30) for _ in range(7)]
    data = request("POST", "/generate-image", headers={**KEY, "Content-Length": "1000"})
    closed: list[float] = []
    try:
        for offset in range(len(data)):
            for connection in connections:
                if connection.fileno() == -1:
                    continue
                try:
                    connection.sendall(data[offset : offset + 1])
                except OSError:
                    closed.append(time.monotonic() - started)
                    connection.close()
            if len(closed) == len(connections):
                break
            time.sleep(0.5)  # the trickle itself (a slow client), not synchronisation
    finally:
        for connection in connections:
            connection.close()
    assert len(closed) == 7
    assert max(closed) < READ_TIMEOUT + 5  # the cleanup runs every second; the send that finds it closed, later


def test_the_usage_plan_throttles_a_burst_with_api_gateways_answer(endpoints: StackEndpoints) -> None:
    statuses = []
    for _ in range(15):
        [(status, headers, body)] = parse(exchange(endpoints, request("GET", "/images", headers=KEY)))
        statuses.append(status)
        if status == 429:
            assert json.loads(body) == {"message": "Too Many Requests"}
            assert headers["x-content-type-options"] == "nosniff"
    assert statuses[:10] == [200] * 10
    assert statuses.count(429) >= 4  # at 5 a second, at most one token comes back meanwhile


def test_the_daily_quota_is_api_gateways_limit_exceeded(endpoints: StackEndpoints) -> None:
    def one() -> tuple[int, Any]:
        [(status, _, body)] = parse(exchange(endpoints, request("GET", "/images", headers=KEY)))
        return status, json.loads(body)

    def exhausted() -> bool:
        return one() == (429, {"message": "Limit Exceeded"})

    wait_until(exhausted, timeout=30, what="the daily quota")  # at most QUOTA requests, at 5 a second
    assert one() == (429, {"message": "Limit Exceeded"})

    # The page needs no key: only the stage's throttle applies to it (spent by the loop above, it refills at 5 a
    # second), never a key's quota.
    def page() -> bool:
        [(status, _, body)] = parse(exchange(endpoints, request("GET", "/")))
        assert status == 200 or json.loads(body) == {"message": "Too Many Requests"}
        return status == 200

    wait_until(page, timeout=5, what="the page")
