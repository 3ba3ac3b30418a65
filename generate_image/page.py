"""``GET /``: the one self-contained page (HTML, CSS and JavaScript inlined; no CDN, no build step).

Loaded only on its route, so the API's cold start does not pay for it. The inline style and script are allowed
by their SHA-256 hashes in the Content-Security-Policy; nothing else runs.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def _parts() -> tuple[str, str, str]:
    style = (STATIC / "page.css").read_text(encoding="utf-8")
    script = (STATIC / "page.js").read_text(encoding="utf-8")
    html = (STATIC / "page.html").read_text(encoding="utf-8").replace("{{STYLE}}", style).replace("{{SCRIPT}}", script)
    return html, _hash(style), _hash(script)


def render(image_origin: str) -> tuple[str, dict[str, str]]:
    """The page and its security headers; ``image_origin`` is where the presigned image URLs point (S3)."""
    html, style_hash, script_hash = _parts()
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src {script_hash}",
            f"style-src {style_hash}",
            f"img-src 'self' {image_origin}",
            "connect-src 'self'",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }
    return html, headers
