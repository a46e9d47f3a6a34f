"""Polling with a deadline, for tests that wait on another process or thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_for_file(path: Path, timeout: float = 30.0) -> None:
    """Wait until ``path`` exists (a child process's signal that it got somewhere)."""
    wait_for(path.exists, timeout, f"{path} to appear", interval=0.01)
