"""A process that uses the catalog without pause cannot starve another one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbripple as nr

HOG = """
import sys, time
import nbripple as nr
ws = nr.use(sys.argv[1])
nr.Artifact("busy").create_from(0)
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    ws.search()              # a query every 20 ms: never idle long enough to release
    time.sleep(0.02)
"""


def test_a_busy_process_hands_the_catalog_over_to_a_waiting_writer(home: Path) -> None:
    hog = subprocess.Popen([sys.executable, "-c", HOG, str(home), "20"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert hog.stdout is not None and hog.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        writer = nr.Artifact("writer")
        durations = []
        for i in range(5):
            start = time.monotonic()
            writer.create_from(i)
            nr.current().catalog.close()
            durations.append(time.monotonic() - start)
            time.sleep(0.2)
        assert hog.poll() is None, "the busy process must still be running"
        assert max(durations) < 2.0, durations
        assert [v.load() for v in sorted(writer.versions(), key=lambda v: v.version)] == [
            0, 1, 2, 3, 4]
        # this process's marker is gone once it got the file (the busy one may be waiting)
        assert not (home / f"catalog.duckdb.wait.{os.getpid()}").exists()
    finally:
        hog.kill()
        hog.wait(timeout=10)
        if hog.stdout is not None:
            hog.stdout.close()


HOLDER = """
import sys, time
from nbripple.catalog import EmbeddedCatalog
catalog = EmbeddedCatalog.for_path(sys.argv[1], idle_release_ms=3_600_000)
catalog.list_artifacts()  # opens the file, then holds it while idle (as a server does)
print("ready", flush=True)
time.sleep(60)
"""


def test_an_idle_holder_of_the_file_hands_it_over_to_a_waiting_writer(home: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home / "catalog.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        start = time.monotonic()
        version = nr.Artifact("writer").create_from(1)
        nr.current().catalog.close()
        assert time.monotonic() - start < 2.0
        assert holder.poll() is None, "the holder must still be running"
        assert version.ref == "writer@1"
    finally:
        holder.kill()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
