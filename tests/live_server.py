"""A real uvicorn server in a thread of the test process, on a free loopback port.

Why here: the browser, schemathesis and serving tests each need the real HTTP server (its protocol,
limits and options), not a test client; starting one, waiting until it listens and stopping it is the
same dance every time, and a free port is what the PostgreSQL cluster of ``conftest`` needs too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(app: Any, *, start_timeout: float = 60.0, **config: Any) -> Iterator[tuple[str, int]]:
    """Serve ``app`` with uvicorn (``config``: more ``uvicorn.Config`` options) until the block ends;
    yields the base URL and the port once the server listens, and fails the test if it never does."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
