"""``EmulatorAdmin``: a typed client of the admin routes of an emulator running in another process."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

__all__ = ["EmulatorAdmin"]


class EmulatorAdmin:
    """Stats, reset and forced errors of the emulator at ``url`` (e.g. ``http://127.0.0.1:4567``).

    Talks to it directly, whatever ``HTTP_PROXY`` says. ``fail_next`` with a code the emulator does not
    know raises ``ValueError`` (as ``BedrockEmulator.fail_next`` does); any other error reply raises
    ``RuntimeError``; an unreachable emulator raises ``OSError`` (``urllib.error.URLError``).
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if urlsplit(url).scheme not in {"http", "https"}:
            raise ValueError(f"expected the emulator's http:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def stats(self) -> dict[str, int]:
        """The counters (``bedrock_emulator.backend.STAT_NAMES``): InvokeModel's requests, images, succeeded,
        throttled, faults, filtered, invalid and unavailable, and the CreateFoundationModelAgreement calls."""
        reply = self._call("GET", "/_emulator/stats")
        return {str(name): int(value) for name, value in reply.items()}

    def reset(self) -> None:
        """Zero the counters and restore the configured agreements (those created since are gone)."""
        self._call("POST", "/_emulator/reset")

    def reset_stats(self) -> None:
        """Zero the counters: ``reset`` (the one route does both), under the name callers used before agreements."""
        self.reset()

    def fail_next(self, code: str, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` InvokeModel requests with error ``code`` (and ``message``, if given)."""
        body: dict[str, Any] = {"code": code, "times": times}
        if message is not None:
            body["message"] = message
        self._call("POST", "/_emulator/fail-next", body, bad_request=ValueError)

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        bad_request: type[Exception] = RuntimeError,
    ) -> dict[str, Any]:
        data = None if body is None and method == "GET" else json.dumps(body or {}).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - scheme checked
        request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                reply: dict[str, Any] = json.loads(response.read())
                return reply
        except urllib.error.HTTPError as error:
            with error:
                raw = error.read()
            try:
                detail = str(json.loads(raw)["message"])
            except (ValueError, KeyError, TypeError):
                detail = raw.decode(errors="replace")
            kind = bad_request if error.code == 400 else RuntimeError
            raise kind(f"{method} {self.url}{path}: HTTP {error.code}: {detail}") from None
