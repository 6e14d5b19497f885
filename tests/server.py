"""A real uvicorn server on 127.0.0.1 (free port) in a background thread, for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from lede.eval.local_server import free_port, wait_ready
from lede.service.http.app import create_app
from lede.service.settings import Settings

__all__ = ["free_port", "running_server", "wait_ready"]


@contextmanager
def running_server(settings: Settings, app: FastAPI | None = None) -> Iterator[str]:
    """Serve `app` (default: `create_app(settings)`) with uvicorn until the block exits;
    yields the base URL."""
    port = free_port()
    served = app if app is not None else create_app(settings)
    config = uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
