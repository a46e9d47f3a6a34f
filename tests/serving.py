"""Real `nbripple serve` processes for tests: start one on a free 127.0.0.1 port and
wait until it answers, stop it with SIGTERM (or kill -9 it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from nbripple.discovery import read_server_file

SRC = Path(__file__).resolve().parents[1] / "src"

CATALOGS = ["embedded", "served"]
both_catalogs = pytest.mark.parametrize("home", CATALOGS, indirect=True)
"""Run a test on an embedded home and on a home served by a real `nbripple serve` (the
``home`` fixture of conftest.py starts one when parametrized with ``"served"``)."""
DEADLINE_S = 30.0


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a process of ``home`` that imports this checkout."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), os.environ.get("PYTHONPATH", "")]), "NBRIPPLE_HOME": str(home), **extra}


@dataclass
class Server:
    process: subprocess.Popen[str]
    home: Path
    url: str
    token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"token {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20.0)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE_S)

    def kill(self) -> None:
        """kill -9: no cleanup, server.json left behind."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=DEADLINE_S)


def start_server(home: Path, *extra: str, port: int = 0, log_dir: Path | None = None
                 ) -> Server:
    """`nbripple serve` on ``port`` (0: a free one); returns once it printed its URL
    and its health endpoint answers."""
    logs = log_dir or home.parent
    out, err = logs / f"serve-{time.monotonic_ns()}.out", logs / f"serve-{time.monotonic_ns()}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", "from nbripple.cli import main; main()", "serve",
             "--home", str(home), "--port", str(port), *extra],
            stdout=stdout, stderr=stderr, text=True, env=child_env(home))
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited {process.returncode}: {err.read_text()}")
        info = read_server_file(home)
        printed = out.read_text().splitlines()
        if info is not None and info.pid == process.pid and printed:
            assert printed[0] == info.url  # the URL is the first line printed
            try:
                answer = httpx.get(info.url + "health", timeout=2.0,
                                   headers={"Authorization": f"token {info.token}"})
                if answer.status_code == 200:
                    return Server(process, home, info.url, info.token)
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"serve did not answer its health endpoint in time: {err.read_text()}")
