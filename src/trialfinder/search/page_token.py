"""Page tokens: the opaque ``pageToken`` that carries a search's position from one page to the next.

Why apart from the request model: the request only checks that a token is well formed; the engine makes
and reads them (with the request's fingerprint inside, so a token cannot be replayed against another
search). Both need the same encoding and the same single error message, which live here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from trialfinder.search.errors import SearchError

__all__ = ["MAX_TOKEN_CHARS", "make_page_token", "read_page_token"]

#: Longest pageToken accepted, in characters.
MAX_TOKEN_CHARS = 4096

_TOKEN_VERSION = 1
_TOKEN_ERROR = ("invalid pageToken: it is garbled, truncated or was not issued for this search; "
                "start again from the first page (without pageToken)")


def make_page_token(state: Mapping[str, Any]) -> str:
    """An opaque, URL-safe token carrying ``state`` (compact JSON) for the next page.

    A 4-byte checksum is not a signature: tokens are not secret and a client may forge one, but a
    truncated or mistyped token is caught and reported instead of silently restarting the search.
    """
    payload = json.dumps(dict(state), separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                         allow_nan=False).encode()
    body = bytes([_TOKEN_VERSION]) + payload
    digest = hashlib.blake2b(body, digest_size=4).digest()
    return base64.urlsafe_b64encode(digest + body).rstrip(b"=").decode("ascii")


def read_page_token(token: str, param: str = "pageToken") -> dict[str, Any]:
    """The state :func:`make_page_token` stored; SearchError("pageToken", ...) for anything else."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS \
            or not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise SearchError(param, _TOKEN_ERROR)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise SearchError(param, _TOKEN_ERROR) from None
    digest, body = raw[:4], raw[4:]
    if len(body) < 2 or hashlib.blake2b(body, digest_size=4).digest() != digest or body[0] != _TOKEN_VERSION:
        raise SearchError(param, _TOKEN_ERROR)
    try:
        state = json.loads(body[1:].decode())
    except (UnicodeDecodeError, ValueError):
        raise SearchError(param, _TOKEN_ERROR) from None
    if not isinstance(state, dict):
        raise SearchError(param, _TOKEN_ERROR)
    return state

