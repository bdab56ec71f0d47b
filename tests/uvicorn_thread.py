"""An ASGI app served by a real uvicorn on a loopback socket, in a thread of the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn


@contextmanager
def serving(config: uvicorn.Config, timeout_s: float = 30) -> Iterator[int]:
    """Serve `config` (port 0: a free one) until the block ends; yields the port.

    uvicorn offers only a `started` flag, no event to wait on, so the start is polled with a
    deadline; a server that dies while starting fails at once instead of waiting it out.
    """
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout_s)
