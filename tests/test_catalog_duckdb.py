"""Mechanics of the embedded (DuckDB) catalog that the protocol does not promise: the
lock file beside it, the retry on a held file, waiting markers, the change token's
stat, the per-process instances — and the process liveness they rely on."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.embedded import host, lockfile
from nbripple.errors import CatalogLockedError
from nbripple.model import ArtifactDecl, NewVersion
from nbripple.pids import pid_alive, process_start_time
from nbripple.refs import Query
from waiting import wait_for_file as wait_for

LOCK_HOLDER = """
    import sys, time, pathlib
    from nbripple.catalog.embedded import lockfile
    assert lockfile.try_acquire(pathlib.Path(sys.argv[1]))
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(float(sys.argv[3]))
"""


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    return tmp_path / "catalog.duckdb"


# -- the lock file -------------------------------------------------------------------


def test_the_lock_file_names_its_holder_and_is_shared_by_threads(catalog_path: Path) -> None:
    lock = lockfile.lock_path(catalog_path)
    assert lock.name == "catalog.duckdb.lock"
    assert lockfile.try_acquire(lock)
    try:
        assert lockfile.holder(lock) == os.getpid()
        taken: list[bool] = []
        thread = threading.Thread(target=lambda: taken.append(lockfile.try_acquire(lock)))
        thread.start()
        thread.join()
        assert taken == [True]  # one more use, from another thread
        lockfile.release(lock)
        assert lockfile.is_held_here(lock)  # the first use still holds it
    finally:
        lockfile.release(lock)
    assert not lockfile.is_held_here(lock)
    assert lock.exists()  # kept, so every process locks the same file


FORKS_WHILE_HOLDING = """
    import os, sys, pathlib
    from nbripple.catalog.embedded import lockfile
    lock = pathlib.Path(sys.argv[1])
    assert lockfile.try_acquire(lock)
    pid = os.fork()
    if pid == 0:  # the child: the parent's lock is not its own
        os._exit(0 if not lockfile.try_acquire(lock) else 3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child took the parent's lock"
    assert lockfile.is_held_here(lock), "the child's exit dropped the parent's lock"
    lockfile.release(lock)
    assert not lockfile.is_held_here(lock)
"""


def test_a_forked_child_does_not_inherit_the_lock(catalog_path: Path) -> None:
    # in a process of its own: forking the test process (with its threads) is unsafe
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", textwrap.dedent(FORKS_WHILE_HOLDING),
                    str(lockfile.lock_path(catalog_path))], check=True, timeout=60)


def test_a_held_lock_is_retried_until_lock_timeout_then_names_the_holder(
    catalog_path: Path, tmp_path: Path
) -> None:
    EmbeddedCatalog(catalog_path, idle_release_ms=0).last_event_seq()  # create the file
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LOCK_HOLDER),
                               str(lockfile.lock_path(catalog_path)), str(ready), "30"])
    try:
        wait_for(ready)
        catalog = EmbeddedCatalog(catalog_path, idle_release_ms=0, lock_timeout_s=0.5)
        marker = catalog_path.with_name(f"catalog.duckdb.wait.{os.getpid()}")
        seen_marker: list[bool] = []

        def watch_marker() -> None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not seen_marker:
                if marker.exists():
                    seen_marker.append(True)
                time.sleep(0.01)

        watcher = threading.Thread(target=watch_marker)
        watcher.start()
        started = time.monotonic()
        with pytest.raises(CatalogLockedError, match=rf"held by PID {holder.pid}") as caught:
            catalog.last_event_seq()
        message = str(caught.value)
        assert "served" not in message  # no advice about a catalog server that is not there
        assert "wait for that process to finish or stop it" in message
        assert "lock_timeout_s" in message
        assert 0.5 <= time.monotonic() - started < 5
        watcher.join()
        assert seen_marker == [True]  # it waited in line...
        assert not marker.exists()  # ...and left no marker behind
        assert catalog.opens == 0
    finally:
        holder.kill()
        holder.wait()
    assert EmbeddedCatalog(catalog_path, idle_release_ms=0).last_event_seq() == 0


# -- waiting markers and process liveness -----------------------------------------------


def test_waiting_markers_count_only_while_their_process_lives(catalog_path: Path) -> None:
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=0)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        marker = catalog_path.with_name(f"catalog.duckdb.wait.{sleeper.pid}")
        marker.parent.mkdir(parents=True, exist_ok=True)
        started = process_start_time(sleeper.pid)
        assert started is not None
        marker.write_text(str(started), encoding="ascii")
        assert catalog._others_waiting()
        marker.write_text("", encoding="ascii")  # written by an older nbripple: pid only
        assert catalog._others_waiting()
        marker.write_text(str(started - 3600), encoding="ascii")  # its pid, reused since
        assert not catalog._others_waiting()
        assert not marker.exists()  # a stale marker is removed
    finally:
        sleeper.kill()
        sleeper.wait()
    marker.touch()
    assert not catalog._others_waiting() and not marker.exists()


def test_a_marker_is_seen_at_once_however_soon_after_the_last_listing(
        catalog_path: Path) -> None:
    # The holder lists the directory again only when its mtime moves; a marker left in
    # the same tick of that clock as the last listing must not be missed. (Linux 6.13+
    # gives a change right after a stat a fine timestamp, so there the mtime always
    # moves; older kernels stamp a whole jiffy alike, which the listing allows for.)
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=0)
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = process_start_time(sleeper.pid)
        assert started is not None
        marker = catalog_path.with_name(f"catalog.duckdb.wait.{sleeper.pid}")
        for _ in range(20):
            (catalog_path.parent / "other-file").write_text("x")  # the directory moves
            assert not catalog._others_waiting()  # listed now
            marker.write_text(str(started), encoding="ascii")  # within the same tick
            assert catalog._others_waiting()
            marker.unlink()
            assert not catalog._others_waiting()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_pid_alive_tells_a_reused_pid_from_its_owner() -> None:
    me = os.getpid()
    started = process_start_time()
    assert started is not None and process_start_time(me) == started
    assert pid_alive(me)
    assert pid_alive(me, start_time=started)
    assert not pid_alive(me, start_time=started - 3600)  # another process had this pid
    assert pid_alive(me, started_before=datetime.now(UTC))
    # an execution recorded before this process started was not run by it
    assert not pid_alive(me, started_before=datetime.fromtimestamp(started, UTC)
                         - timedelta(hours=1))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid) and process_start_time(child.pid) is None


def test_a_zombie_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while pid_alive(child.pid):  # exited but not reaped: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.wait()


# -- change token, instances -------------------------------------------------------------


def test_the_change_token_never_opens_the_file(catalog_path: Path) -> None:
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=0)
    assert catalog.change_token() == (0, 0, 0, 0)  # no file yet
    catalog.last_event_seq()
    opens = catalog.opens
    token = catalog.change_token()
    assert catalog.change_token() == token  # nothing was written
    assert catalog.opens == opens and not catalog.is_open
    assert not lockfile.is_held_here(lockfile.lock_path(catalog_path))


def test_close_all_closes_and_forgets_every_shared_instance(catalog_path: Path) -> None:
    EmbeddedCatalog(catalog_path, idle_release_ms=0).last_event_seq()  # create the file
    first = EmbeddedCatalog.for_path(catalog_path, idle_release_ms=5000)
    assert EmbeddedCatalog.for_path(catalog_path, idle_release_ms=5000) is first
    other = EmbeddedCatalog.for_path(catalog_path, idle_release_ms=2000)
    first.last_event_seq()
    other.last_event_seq()
    assert first.is_open and other.is_open
    EmbeddedCatalog.close_all()
    assert not first.is_open and not other.is_open
    assert not lockfile.is_held_here(lockfile.lock_path(catalog_path))
    assert EmbeddedCatalog.for_path(catalog_path, idle_release_ms=5000) is not first
    EmbeddedCatalog.close_all()


EXITS_WITH_THE_FILE_OPEN = """
    import atexit, sys, pathlib
    from nbripple.catalog import EmbeddedCatalog
    from nbripple.catalog.embedded import lockfile
    path = pathlib.Path(sys.argv[1])
    catalog = EmbeddedCatalog(path, idle_release_ms=60_000)
    catalog.last_event_seq()
    assert catalog.is_open and lockfile.is_held_here(lockfile.lock_path(path))
    atexit._run_exitfuncs()  # what the interpreter does at exit
    assert not catalog.is_open, "the connection outlived the lock"
    assert not lockfile.is_held_here(lockfile.lock_path(path))
"""


def test_at_exit_the_connection_is_closed_before_the_lock_is_released(
    catalog_path: Path,
) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(EXITS_WITH_THE_FILE_OPEN),
                    str(catalog_path)], check=True, timeout=60)


# -- the in-memory database the file is attached to ---------------------------------------

OPENS_THE_FILE = """
    import sys, duckdb
    duckdb.connect(sys.argv[1]).close()  # fails while another process has it open
"""


def _another_process_can_open(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(OPENS_THE_FILE), str(path)],
                          capture_output=True, timeout=60)
    return done.returncode == 0


def test_bursts_attach_the_file_to_one_database_and_detaching_releases_it(
    catalog_path: Path,
) -> None:
    first = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    other = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    first.last_event_seq()
    database = host._hosts[os.path.realpath(catalog_path)].con
    other.last_event_seq()  # a second connection shares the attachment
    assert host._hosts[os.path.realpath(catalog_path)].users == 2
    first.close()
    assert not _another_process_can_open(catalog_path)  # still attached for `other`
    other.close()
    assert _another_process_can_open(catalog_path)
    first.last_event_seq()  # the next burst attaches again, to the same database
    assert host._hosts[os.path.realpath(catalog_path)].con is database
    first.close()


READS_THE_FILE = """
    import sys
    from nbripple.catalog import EmbeddedCatalog
    catalog = EmbeddedCatalog(sys.argv[1], idle_release_ms=0)
    print(catalog.last_event_seq())
"""


def test_a_detach_leaves_its_few_commits_in_the_log_for_the_next_attach_to_checkpoint(
    catalog_path: Path,
) -> None:
    wal = Path(f"{catalog_path}.wal")
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    catalog.last_event_seq()  # a new file: the burst that makes its tables leaves them
    catalog.close()
    assert wal.stat().st_size > 0
    catalog.commit(None, [_new("first")])  # the next one replays them, so it checkpoints
    catalog.close()
    assert not wal.exists() or wal.stat().st_size == 0
    catalog.commit(None, [_new("left")])
    catalog.close()  # found the log empty: leaves its commit there, handing over sooner
    assert wal.stat().st_size > 0
    # another process replays it (it sees the version) and, reading only, leaves it ...
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(READS_THE_FILE),
                           str(catalog_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    assert wal.stat().st_size > 0
    catalog.commit(None, [_new("next")])  # ... to the next writer, which checkpoints it
    catalog.close()
    assert not wal.exists() or wal.stat().st_size == 0
    # a burst whose commits make a large log checkpoints them itself
    big = dataclasses.replace(_new("big"), card="x" * (2 * host.WAL_LEFT_MAX), card_type="model")
    catalog.commit(None, [big])
    catalog.close()
    assert not wal.exists() or wal.stat().st_size == 0
    assert catalog.get_version("big", 1) is not None
    assert catalog.get_version("left", 1) is not None
    catalog.close()


class _FailingDetach:
    """An in-memory database whose DETACH fails (as a checkpoint on a full disk does)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def execute(self, sql: str) -> object:
        if sql.startswith("DETACH"):
            raise duckdb.IOException("IO Error: could not checkpoint (simulated)")
        return self.con.execute(sql)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def close(self) -> None:
        self.con.close()


def test_a_failed_detach_still_releases_the_file_and_keeps_the_commits(
    catalog_path: Path,
) -> None:
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    catalog.last_event_seq()
    catalog.close()
    entry = host._hosts[os.path.realpath(catalog_path)]
    entry.con = _FailingDetach(entry.con)  # type: ignore[assignment]
    catalog.register_plan("kept", {"notebook": "n.ipynb"}, "hash")
    catalog.close()  # the detach fails: the database is closed instead
    assert os.path.realpath(catalog_path) not in host._hosts
    assert not lockfile.is_held_here(lockfile.lock_path(catalog_path))
    assert _another_process_can_open(catalog_path)
    assert catalog.get_plan("kept") is not None  # the commit is intact
    catalog.close()


# -- what an open knows of the numbering ------------------------------------------------


def _new(name: str, partitions: dict[str, str] | None = None) -> NewVersion:
    return NewVersion(artifact=ArtifactDecl(name=name, partition_keys=tuple(partitions or {})),
                      partitions=dict(partitions or {}), time_partition=None, kind="value",
                      python_type="builtins.str", content_hash=f"h{time.monotonic_ns()}",
                      size=1, uri=None, inline_value='"x"')


def _heads(catalog: EmbeddedCatalog, name: str) -> dict[str, int]:
    with catalog.connection() as con:
        return dict(con.execute("SELECT facet, version FROM heads WHERE artifact = ?",
                                [name]).fetchall())


def test_a_rolled_back_commit_leaves_no_numbering_behind(catalog_path: Path) -> None:
    # The first commit of an artifact and of a partition fails after inserting its heads
    # rows: what the open remembered of them goes with the transaction.
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    catalog.commit(None, [_new("other")])
    with pytest.raises(RuntimeError, match="after the heads"), catalog.transaction():
        catalog.commit(None, [_new("fresh", {"day": "mon"})])
        catalog.commit(None, [_new("other", {"day": "mon"})])
        raise RuntimeError("failed after the heads")
    assert catalog.is_open  # the same open: only the rollback can have told it
    assert catalog.get_artifact("fresh") is None
    assert [v.version for v in catalog.commit(None, [_new("fresh", {"day": "mon"})])] == [1]
    assert [v.version for v in catalog.commit(None, [_new("other", {"day": "mon"})])] == [2]
    assert _heads(catalog, "fresh") == {"*": 1, "kind=value": 1, "p:day=mon": 1}
    assert _heads(catalog, "other") == {"*": 2, "kind=value": 2, "p:day=mon": 2}
    assert [e.seq for e in catalog.events_after(0)] == [1, 2, 3]
    found = catalog.find_version(Query(name="other", partitions={"day": "mon"}))
    assert found is not None and found.version == 2
    catalog.close()


def test_instances_of_one_file_in_one_process_number_in_turn(catalog_path: Path) -> None:
    first = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    second = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    numbers = []
    for catalog in (first, second, first, first, second):
        numbers += [v.version for v in catalog.commit(None, [_new("shared")])]
    assert first.is_open and second.is_open  # both held it throughout
    assert numbers == [1, 2, 3, 4, 5]
    assert [e.seq for e in first.events_after(0)] == [1, 2, 3, 4, 5]
    assert _heads(second, "shared") == {"*": 5, "kind=value": 5}
    first.close()
    second.close()


def test_heads_follow_each_facet_across_commits_of_one_open(catalog_path: Path) -> None:
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    for day in ("mon", "tue", "mon", "wed"):
        catalog.commit(None, [_new("daily", {"day": day})])
    catalog.commit_many([(None, [_new("daily", {"day": "tue"})]),
                         (None, [_new("daily", {"day": "thu"}), _new("daily", {"day": "mon"})])])
    assert _heads(catalog, "daily") == {"*": 7, "kind=value": 7, "p:day=mon": 7,
                                        "p:day=tue": 5, "p:day=wed": 4, "p:day=thu": 6}
    catalog.close()
    reopened = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    assert [v.version for v in reopened.commit(None, [_new("daily", {"day": "wed"})])] == [8]
    assert _heads(reopened, "daily")["p:day=wed"] == 8
    reopened.close()


def test_close_all_releases_instances_it_did_not_hand_out(catalog_path: Path) -> None:
    # A workspace keeps the catalog object it was given after close_all forgot it; once
    # close_all returns, this process holds no catalog file and a raw connection opens.
    forgotten = EmbeddedCatalog.for_path(catalog_path, idle_release_ms=60_000)
    EmbeddedCatalog.close_all()
    own = EmbeddedCatalog(catalog_path, idle_release_ms=60_000)
    forgotten.last_event_seq()
    own.last_event_seq()
    assert forgotten.is_open and own.is_open
    EmbeddedCatalog.close_all()
    assert not forgotten.is_open and not own.is_open
    duckdb.connect(str(catalog_path)).close()


# -- being woken when another process releases the file ---------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="inotify is Linux's")
def test_a_release_by_another_process_wakes_a_watch_at_once(catalog_path: Path) -> None:
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=0)
    catalog.last_event_seq()  # made, then released
    woken = threading.Event()
    stop = catalog.watch_releases(woken.set)
    assert stop is not None
    try:
        assert not woken.wait(0.3)  # nobody released anything meanwhile
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(READS_THE_FILE),
                               str(catalog_path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert woken.wait(5)  # its release (the lock file closed) woke the watch
    finally:
        stop()
    assert not [t for t in threading.enumerate() if t.name == "nbripple-catalog-releases"]
    stop()  # a second stop is harmless


def test_held_elsewhere_tells_without_taking_the_lock_or_waking_a_watch(
    catalog_path: Path, tmp_path: Path,
) -> None:
    catalog = EmbeddedCatalog(catalog_path, idle_release_ms=0)
    catalog.last_event_seq()
    assert not catalog.held_elsewhere()
    woken = threading.Event()
    stop = catalog.watch_releases(woken.set) if sys.platform == "linux" else None
    ready = tmp_path / "holding"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LOCK_HOLDER),
                               str(lockfile.lock_path(catalog_path)), str(ready), "3"])
    try:
        wait_for(ready)
        woken.clear()
        assert catalog.held_elsewhere()
        assert catalog.held_elsewhere()  # asking again neither takes it ...
        assert not woken.wait(0.3)  # ... nor opens and closes the lock file (a "release")
    except BaseException:
        holder.kill()
        raise
    finally:
        holder.wait(timeout=30)
        if stop is not None:
            stop()
    assert not catalog.held_elsewhere()  # the holder ended: free again
    with catalog.burst():
        assert not catalog.held_elsewhere()  # this process's own hold never makes it wait
    assert not catalog.held_elsewhere()
