"""How uvicorn runs the app: the HTTP protocol with a request-head size limit that answers 431.

Why h11 and not httptools: httptools buffers a header value whole before handing it on, so a client can
make the server hold any amount of memory with one endless header; h11 counts the bytes of an
incomplete request head and stops at ``h11_max_incomplete_event_size``. uvicorn then answers every
protocol error with a generic 400; this subclass says what happened with the status made for it,
``431 Request Header Fields Too Large`` (the limit covers the request line too).
"""

from __future__ import annotations

from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from trialfinder.web.settings import Settings

#: The protocol class for uvicorn's ``http`` option, as an import string (worker processes import it).
PROTOCOL = "trialfinder.web.server:LimitedH11Protocol"


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering 431 (not 400) when the request head exceeds the limit."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._head_limit = config.h11_max_incomplete_event_size or 16 * 1024  # h11 default

    def send_400_response(self, msg: str) -> None:
        pending = len(self.conn.trailing_data[0])
        if pending <= self._head_limit:
            super().send_400_response(msg)
            return
        body = f"request line and headers exceed {self._head_limit:,} bytes\n".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close"),
                   (b"cache-control", b"no-store")]
        for event in (h11.Response(status_code=431, headers=headers, reason=b"Request Header Fields Too Large"),
                      h11.Data(data=body), h11.EndOfMessage()):
            self.transport.write(self.conn.send(event))
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that every trialfinder server uses."""
    return {"http": PROTOCOL, "h11_max_incomplete_event_size": settings.max_header_bytes,
            "proxy_headers": False, "server_header": False}
