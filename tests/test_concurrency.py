"""Several real processes on one catalog: concurrent commits lose nothing, the file is
released when idle, a lock held too long is a clear error, and a process killed
mid-commit leaves no catalog row behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pytest

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.embedded import lockfile
from nbripple.errors import CatalogLockedError
from serving import both_catalogs
from waiting import wait_for_file as wait_for

WORKERS = 4
PER_WORKER = 50


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def set_catalog_config(home: Path, **values: float) -> None:
    """Rewrite the [catalog] settings of config.toml, then make the home current again."""
    nr.current().catalog.close()  # release the file now rather than after the idle time
    lines = [f"{key} = {value}" for key, value in values.items()]
    (home / "config.toml").write_text(
        '[store]\nurl = "store"\n\n[catalog]\n' + "\n".join(lines) + "\n", encoding="utf-8"
    )
    nr.use(home)


WORKER = """
    import sys, time, pathlib
    import nbripple as nr
    worker, count, go = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
    art = nr.Artifact("contended", partition_keys=["worker"])
    while not go.exists():
        time.sleep(0.005)
    for i in range(count):
        art.create_from({"worker": worker, "i": i}, worker=worker)
"""


@pytest.mark.slow
@pytest.mark.parametrize("idle_release_ms", [100, 0], ids=["burst", "open-per-commit"])
def test_concurrent_processes_commit_every_version_exactly_once(
    home: Path, tmp_path: Path, idle_release_ms: int
) -> None:
    set_catalog_config(home, idle_release_ms=idle_release_ms, lock_timeout_s=120)
    run_contended_workers(tmp_path)


@pytest.mark.parametrize("home", ["served"], indirect=True)
def test_concurrent_processes_through_a_server_commit_every_version_exactly_once(
    home: Path, tmp_path: Path
) -> None:
    assert type(nr.current().catalog).__name__ == "ServedCatalog"
    run_contended_workers(tmp_path)


def run_contended_workers(tmp_path: Path) -> None:
    """WORKERS processes commit PER_WORKER versions each at once: every one is there
    once, numbered without gaps, each worker's in its order, one event each."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([*python(WORKER), str(w), str(PER_WORKER), str(go)],
                         stderr=subprocess.PIPE, text=True)
        for w in range(WORKERS)
    ]
    time.sleep(0.5)  # let every worker import nbripple and wait at the start line
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err

    ws = nr.current()
    total = WORKERS * PER_WORKER
    versions = ws.versions("contended")
    assert sorted(v.version for v in versions) == list(range(1, total + 1))
    payloads = [ws.load_version(v, record=False) for v in versions]
    assert sorted((p["worker"], p["i"]) for p in payloads) == [
        (w, i) for w in range(WORKERS) for i in range(PER_WORKER)
    ]
    for v, payload in zip(versions, payloads, strict=True):
        assert v.partitions == {"worker": str(payload["worker"])}
    # each worker's own commits keep their order
    for w in range(WORKERS):
        mine = sorted((v for v, p in zip(versions, payloads, strict=True) if p["worker"] == w),
                      key=lambda v: v.version)
        assert [ws.load_version(v, record=False)["i"] for v in mine] == list(range(PER_WORKER))

    events = ws.catalog.events_after(0, limit=10_000)
    assert len(events) == total
    assert [e.seq for e in events] == list(range(1, total + 1))
    assert sorted(e.version for e in events) == list(range(1, total + 1))
    producers = {v.execution_id for v in versions}
    assert len(producers) == WORKERS
    for execution_id in producers:
        ex = ws.execution(execution_id or "")
        assert (ex.kind, ex.status, len(ex.outputs)) == ("interactive", "succeeded", PER_WORKER)


def test_connection_is_released_when_idle_so_another_process_can_write(home: Path) -> None:
    set_catalog_config(home, idle_release_ms=150, lock_timeout_s=2)
    catalog = nr.current().catalog
    nr.Artifact("shared").create_from("first")
    assert catalog.is_open  # type: ignore[attr-defined]
    deadline = time.monotonic() + 5
    while catalog.is_open:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the catalog was never released"
        time.sleep(0.01)

    # lock_timeout_s = 2 in the child too: it would fail if the file were still held
    started = time.monotonic()
    subprocess.run(python("""
        import nbripple as nr
        nr.Artifact("shared").create_from("second")
    """), check=True, timeout=60)
    assert time.monotonic() - started < 30
    assert [nr.load("shared@1"), nr.load("shared@2")] == ["first", "second"]


def test_a_burst_holds_the_connection_and_opens_the_file_once(home: Path) -> None:
    set_catalog_config(home, idle_release_ms=2000, lock_timeout_s=5)
    catalog = nr.current().catalog
    art = nr.Artifact("burst")
    opens_before = catalog.opens  # type: ignore[attr-defined]
    for i in range(20):
        art.create_from(i)
        nr.load(f"burst@{i + 1}")
    assert catalog.opens - opens_before == 1  # type: ignore[attr-defined]
    catalog.close()
    assert not catalog.is_open  # type: ignore[attr-defined]


HOLDER = """
    import sys, time, pathlib, duckdb
    deadline = time.monotonic() + 30
    while True:
        try:
            con = duckdb.connect(sys.argv[1])
            break
        except duckdb.IOException:  # the test process may still be releasing it
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    con.execute("SELECT count(*) FROM versions").fetchall()
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
    con.close()
"""


def test_a_lock_held_too_long_gives_catalog_locked_error(home: Path, tmp_path: Path) -> None:
    nr.Artifact("locked").create_from(1)
    set_catalog_config(home, idle_release_ms=100, lock_timeout_s=0.5)
    ready = tmp_path / "holding"
    holder = subprocess.Popen([*python(HOLDER), str(home / "catalog.duckdb"), str(ready), "30"])
    try:
        wait_for(ready)
        started = time.monotonic()
        with pytest.raises(CatalogLockedError) as err:
            nr.Artifact("locked").create_from(2)
        waited = time.monotonic() - started
        message = str(err.value)
        assert f"held by PID {holder.pid}" in message
        assert "0.5 s" in message and "lock_timeout_s in config.toml" in message
        assert str(home / "catalog.duckdb") in message
        assert 0.5 <= waited < 5
    finally:
        holder.kill()
        holder.wait()
    assert nr.Artifact("locked").create_from(3).ref == "locked@2"  # nothing half-written


def test_a_briefly_held_lock_is_waited_out(home: Path, tmp_path: Path) -> None:
    nr.Artifact("patient").create_from(1)
    set_catalog_config(home, idle_release_ms=100, lock_timeout_s=30)
    ready = tmp_path / "holding"
    holder = subprocess.Popen([*python(HOLDER), str(home / "catalog.duckdb"), str(ready), "1.0"])
    try:
        wait_for(ready)
        started = time.monotonic()
        assert nr.Artifact("patient").create_from(2).ref == "patient@2"
        assert time.monotonic() - started >= 0.5
    finally:
        holder.wait(timeout=30)


# -- a process killed between the blob write and the catalog commit ---------------

KILL_BEFORE_COMMIT = """
    import os, signal, sys, pathlib
    import nbripple as nr
    from nbripple.catalog.embedded import EmbeddedCatalog

    def die(self, execution_id, new):
        pathlib.Path(sys.argv[1]).write_text("blob written")
        os.kill(os.getpid(), signal.SIGKILL)

    EmbeddedCatalog.commit = die
    nr.Artifact("victim").create_from(list(range(30_000)))  # > 64 KiB: a blob
"""

KILL_MID_TRANSACTION = """
    import os, signal, sys, json, pathlib
    from contextlib import contextmanager
    import nbripple as nr
    from nbripple.catalog.embedded import EmbeddedCatalog

    real_transaction = EmbeddedCatalog.transaction

    class DiesBeforeTheEvent:
        # The version row is inserted; the process dies before the event and COMMIT.
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args, **kwargs):
            if sql.lstrip().startswith("INSERT INTO events"):
                seen = self._con.execute("SELECT count(*) FROM versions").fetchone()[0]
                pathlib.Path(sys.argv[1]).write_text(json.dumps({"versions_in_txn": seen}))
                os.kill(os.getpid(), signal.SIGKILL)
            return self._con.execute(sql, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._con, name)

    @contextmanager
    def dying_transaction(self):
        with real_transaction(self) as con:
            yield DiesBeforeTheEvent(con)

    EmbeddedCatalog.transaction = dying_transaction
    nr.Artifact("victim").create_from(list(range(30_000)))  # > 64 KiB: a blob
"""


@pytest.mark.parametrize("script", [KILL_BEFORE_COMMIT, KILL_MID_TRANSACTION],
                         ids=["before-commit", "mid-transaction"])
def test_a_process_killed_before_commit_leaves_no_catalog_row(
    home: Path, tmp_path: Path, script: str
) -> None:
    nr.Artifact("bystander").create_from("committed before")
    nr.current().catalog.close()
    reached = tmp_path / "reached"
    proc = subprocess.run([*python(script), str(reached)], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert reached.exists()
    if script is KILL_MID_TRANSACTION:
        assert json.loads(reached.read_text()) == {"versions_in_txn": 2}

    blobs = [p for p in (home / "store" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1  # the blob was written first and may stay (gc removes it)
    with nr.current().catalog.connection() as con:  # type: ignore[attr-defined]
        assert con.execute("SELECT artifact, version FROM versions").fetchall() == [
            ("bystander", 1)]
        assert con.execute("SELECT artifact FROM events").fetchall() == [("bystander",)]
        assert con.execute(
            "SELECT count(*) FROM artifacts WHERE name = 'victim'").fetchone() == (0,)
    # the next commit takes number 1: no gap, and it reuses the orphaned blob
    again = nr.Artifact("victim").create_from(list(range(30_000)))
    assert again.ref == "victim@1"
    assert again.content_hash == blobs[0].name
    assert nr.load("victim@1") == list(range(30_000))


@both_catalogs
def test_threads_of_one_process_share_the_catalog_safely(home: Path) -> None:
    art = nr.Artifact("threaded", partition_keys=["thread"])
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(10):
                art.create_from({"thread": thread, "i": i}, thread=thread)
                assert nr.load(art.query(thread=thread))["thread"] == thread
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    versions = art.versions()
    assert sorted(v.version for v in versions) == list(range(1, 41))
    assert len({v.execution_id for v in versions}) == 1  # one interactive execution


def test_catalog_file_is_not_held_by_a_process_after_it_exits(home: Path) -> None:
    subprocess.run(python("""
        import nbripple as nr
        nr.Artifact("quick").create_from(1)
    """), check=True, timeout=60)
    con = duckdb.connect(str(home / "catalog.duckdb"))  # would fail if still locked
    try:
        assert con.execute("SELECT count(*) FROM versions").fetchone() == (1,)
    finally:
        con.close()


@both_catalogs
def test_the_env_var_home_reaches_child_processes(home: Path) -> None:
    out = subprocess.run(python("import nbripple as nr; print(nr.current().home)"),
                         check=True, capture_output=True, text=True, timeout=60)
    assert Path(out.stdout.strip()) == home
    assert os.environ["NBRIPPLE_HOME"] == str(home)


# -- nbripple's own lock beside the catalog file -------------------------------------

NBRIPPLE_HOLDER = """
    import sys, time, pathlib
    import nbripple as nr
    ws = nr.current()
    with ws.catalog.connection():  # a long burst: the connection stays open
        pathlib.Path(sys.argv[1]).touch()
        time.sleep(float(sys.argv[2]))
"""


def test_a_burst_in_another_nbripple_process_names_its_pid(home: Path, tmp_path: Path) -> None:
    nr.Artifact("busy").create_from(1)
    set_catalog_config(home, idle_release_ms=5000, lock_timeout_s=0.5)
    ready = tmp_path / "holding"
    holder = subprocess.Popen([*python(NBRIPPLE_HOLDER), str(ready), "30"])
    try:
        wait_for(ready)
        lock_file = lockfile.lock_path(home / "catalog.duckdb")
        assert lockfile.holder(lock_file) == holder.pid
        with pytest.raises(CatalogLockedError, match=rf"held by PID {holder.pid}"):
            nr.load("busy@1")
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock with the process
        holder.wait()
    assert nr.load("busy@1") == 1
    assert lockfile.is_held_here(lockfile.lock_path(home / "catalog.duckdb"))


PROBE = """
    import sys, pathlib
    from nbripple.catalog.embedded import lockfile
    sys.exit(0 if lockfile.try_acquire(pathlib.Path(sys.argv[1])) else 3)
"""


def test_the_lock_is_shared_within_a_process_and_released_with_the_connection(
    home: Path,
) -> None:
    set_catalog_config(home, idle_release_ms=5000, lock_timeout_s=5)
    lock_file = lockfile.lock_path(home / "catalog.duckdb")
    catalog = nr.current().catalog
    nr.Artifact("locks").create_from(1)
    assert catalog.is_open and lockfile.is_held_here(lock_file)  # type: ignore[attr-defined]
    # a second catalog object on the same file in this process shares the lock
    other = EmbeddedCatalog(home / "catalog.duckdb", idle_release_ms=0, lock_timeout_s=1)
    assert other.get_version("locks", 1) is not None
    assert lockfile.is_held_here(lock_file)
    catalog.close()
    assert not lockfile.is_held_here(lock_file)
    probe = subprocess.run([*python(PROBE), str(lock_file)], timeout=60)
    assert probe.returncode == 0  # free for another process once released here
