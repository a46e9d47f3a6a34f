"""The served mode end to end: real `nbripple serve` processes, real client processes,
no mocks.

* which catalog a process picks (a live server.json, a stale one, NBRIPPLE_URL), and
  what a wrong token or a dead server does to it;
* many writers through one server: every commit numbered once, nothing lost;
* a server killed with -9 in the middle of a burst and started again: the clients'
  own retries (one idempotency key per write, across the restart) find the new server
  through server.json, and nothing is lost or written twice;
* the server's watcher: it fires on another process's commit within a second, and on
  SIGTERM it lets a running triggered run finish, writing through the server;
* a client whose server stopped first still exits promptly;
* a client of another home writes its blobs to the server's store unless it names one.

Every wait has a deadline, so a broken server fails a test instead of hanging it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import nbripple as nr
from nbripple import errors
from nbripple.catalog import EmbeddedCatalog
from nbripple.catalog.served import ServedCatalog
from nbripple.discovery import live_server, read_server_file
from serving import Server, child_env, start_server
from waiting import wait_for

DEADLINE_S = 120.0
"""No child process of these tests may take longer than this."""

# A client process: reports which catalog it uses, waits for the go-file, then
# commits "<proc>-<i>" for i in range(count), one create_from each, printing each
# success ("ok <value> <version>") and stopping at the first error ("error ...").
WRITER = r"""
import sys, time
from pathlib import Path
import nbripple as nr
from nbripple.service import current

proc, count, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
catalog = current().catalog
print("ready", type(catalog).__name__, getattr(catalog, "url", ""), flush=True)
artifact = nr.Artifact("counter")
while not go.exists():
    time.sleep(0.005)
for i in range(count):
    value = f"{proc}-{i}"
    try:
        version = artifact.create_from(value)
    except Exception as exc:
        message = " ".join(str(exc).split())
        print("error", value, type(exc).__name__, message, flush=True)
        sys.exit(3)
    print("ok", value, version.version, flush=True)
"""

# Which catalog a fresh process uses, and one write through it.
WHICH = r"""
import json, sys
import nbripple as nr
from nbripple.service import current

catalog = current().catalog
version = nr.Artifact(sys.argv[1]).create_from(sys.argv[2])
print(json.dumps({"catalog": type(catalog).__name__, "url": getattr(catalog, "url", None),
                  "ref": version.ref, "seen": [v.ref for v in nr.versions(sys.argv[1])]}))
"""


def fresh_home(root: Path) -> Path:
    """An initialized home that no process of this test holds open."""
    home = nr.init_home(root)
    EmbeddedCatalog.close_all()
    return home


def python(code: str, home: Path, *args: str, env: dict[str, str] | None = None,
           timeout: float = DEADLINE_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=timeout, env=env or child_env(home), check=False)


def cli(home: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = DEADLINE_S) -> subprocess.CompletedProcess[str]:
    """`nbripple ARGS` in its own process (this checkout's code)."""
    return subprocess.run([sys.executable, "-c", "from nbripple.cli import main; main()",
                           *args], capture_output=True, text=True, timeout=timeout,
                          env=env or child_env(home), cwd=cwd, check=False)


def which(home: Path, name: str, value: str, env: dict[str, str] | None = None
          ) -> dict[str, object]:
    done = python(WHICH, home, name, value, env=env)
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


def dead_url() -> str:
    """The API URL of a port on which nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/nbripple/api/"


def watcher_idle(client: httpx.Client) -> bool:
    """The server's watcher has no run whose process is still there (a run ends after
    its execution is marked finished)."""
    local = client.get("watcher").json()["local"]
    return bool(local) and local["running"] == 0


@contextmanager
def serving(home: Path, *extra: str) -> Iterator[Server]:
    server = start_server(home, *extra)
    try:
        yield server
    finally:
        server.stop()


# -- which catalog a process uses ----------------------------------------------------
def test_a_live_server_json_makes_a_fresh_process_use_the_server(tmp_path: Path) -> None:
    home = fresh_home(tmp_path / "project")
    with serving(home, "--no-watch") as server:
        found = which(home, "picked", "through the server")
        assert found["catalog"] == "ServedCatalog"
        assert found["url"] == server.url
        assert found["ref"] == "picked@1"
        with server.client() as client:  # the write is the server's
            answer = client.get("versions/picked/1")
            assert answer.status_code == 200, answer.text
            assert answer.json()["producer"]["kind"] == "interactive"


def test_after_kill_9_a_new_process_uses_the_file_and_a_new_server_replaces_server_json(
        tmp_path: Path) -> None:
    home = fresh_home(tmp_path / "project")
    server = start_server(home, "--no-watch")
    try:
        assert which(home, "picked", "one")["catalog"] == "ServedCatalog"
    finally:
        server.kill()
    stale = read_server_file(home)
    assert stale is not None and stale.pid == server.process.pid  # left behind
    assert live_server(home) is None  # ... and known to be dead

    embedded = which(home, "picked", "two")
    assert embedded["catalog"] == "EmbeddedCatalog"
    assert embedded["seen"] == ["picked@2", "picked@1"]  # what the dead server committed

    with serving(home, "--no-watch") as again:
        info = read_server_file(home)
        assert info is not None and info.pid == again.process.pid != stale.pid
        assert info.token != stale.token
        served = which(home, "picked", "three")
        assert served["catalog"] == "ServedCatalog" and served["url"] == again.url
        assert served["seen"] == ["picked@3", "picked@2", "picked@1"]


def test_nbripple_url_and_token_point_a_process_at_the_server_of_another_home(
        tmp_path: Path) -> None:
    mine, theirs = fresh_home(tmp_path / "mine"), fresh_home(tmp_path / "theirs")
    with serving(theirs, "--no-watch") as server:
        env = child_env(mine, NBRIPPLE_URL=server.url, NBRIPPLE_TOKEN=server.token)
        found = which(mine, "shared", "over there", env=env)
        assert found["catalog"] == "ServedCatalog" and found["url"] == server.url
        with server.client() as client:
            assert client.get("versions/shared/1").status_code == 200
        listed = cli(mine, "ls", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        assert "shared" in [row["name"] for row in json.loads(listed.stdout)]
    # nothing was written to this process's own home
    assert nr.Workspace(mine).catalog.get_artifact("shared") is None
    EmbeddedCatalog.close_all()


# A client of another home writes a file artifact (a blob) and prints its store's URL.
BLOB_WRITER = r"""
import sys
from pathlib import Path
import nbripple as nr
from nbripple.service import current
source = Path(sys.argv[1])
source.write_text("rows of the day")
version = nr.Artifact("daily_file").create_from(source)
print(current().store.url, flush=True)
"""


def test_a_client_of_another_home_writes_blobs_to_the_servers_store_unless_it_names_one(
        tmp_path: Path) -> None:
    mine, theirs = fresh_home(tmp_path / "mine"), fresh_home(tmp_path / "theirs")
    shared = tmp_path / "shared-store"  # e.g. a shared filesystem both machines mount
    config = theirs / "config.toml"
    config.write_text(config.read_text().replace('url = "store"', f'url = "{shared}"'))
    with serving(theirs, "--no-watch") as server:
        env = child_env(mine, NBRIPPLE_URL=server.url, NBRIPPLE_TOKEN=server.token)
        done = python(BLOB_WRITER, mine, str(tmp_path / "day.txt"), env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == str(shared)
        assert any(p.is_file() for p in shared.rglob("*"))
        assert not any(p.is_file() for p in (mine / "store").rglob("*"))
        # A process of the server's own home reads it back from there.
        reader = python("import nbripple as nr; "
                        "print(nr.Artifact('daily_file').get().load().read_text())", theirs)
        assert reader.returncode == 0, reader.stderr
        assert reader.stdout.strip() == "rows of the day"
        # A store named here (an absolute path or a URL) is this process's own choice.
        own = tmp_path / "my-store"
        mine_config = mine / "config.toml"
        mine_config.write_text(mine_config.read_text().replace('url = "store"',
                                                               f'url = "{own}"'))
        done = python(BLOB_WRITER, mine, str(tmp_path / "day2.txt"), env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split()[-1] == str(own)
        assert any(p.is_file() for p in own.rglob("*"))
    EmbeddedCatalog.close_all()


def test_a_wrong_token_is_one_line_saying_it_was_refused(tmp_path: Path) -> None:
    home = fresh_home(tmp_path / "project")
    with serving(home, "--no-watch") as server:
        started = time.monotonic()
        with pytest.raises(errors.ServerUnavailable) as refused:
            ServedCatalog(server.url, "not-the-token").list_artifacts()
        assert time.monotonic() - started < 5  # refused at once, not retried
        message = str(refused.value)
        assert "\n" not in message
        assert "refused the token" in message and server.url in message

        env = child_env(home, NBRIPPLE_URL=server.url, NBRIPPLE_TOKEN="not-the-token")
        done = cli(home, "ls", env=env)
        assert done.returncode != 0
        assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
        assert done.stderr.startswith("error: ") and "refused the token" in done.stderr
        assert "Traceback" not in done.stderr + done.stdout


def test_a_dead_url_raises_server_unavailable_naming_it_and_never_hangs() -> None:
    url = dead_url()
    catalog = ServedCatalog(url, "token", retry_s=1)
    for call in (catalog.list_artifacts, lambda: catalog.commit(None, [])):
        started = time.monotonic()
        with pytest.raises(errors.ServerUnavailable) as unavailable:
            call()
        assert time.monotonic() - started < 5
        message = str(unavailable.value)
        assert url in message and "\n" not in message


@pytest.mark.slow
def test_the_cli_against_a_dead_url_fails_with_one_line_within_its_retry_budget(
        tmp_path: Path) -> None:
    """The budget is the transport's default (30 s; there is no setting for it). One
    command spends it once: the housekeeping sweep that the first use of the catalog
    runs (and the release at the command's end runs again) must not spend it too."""
    home = fresh_home(tmp_path / "project")
    url = dead_url()
    started = time.monotonic()
    done = cli(home, "ls", env=child_env(home, NBRIPPLE_URL=url, NBRIPPLE_TOKEN="t"),
               timeout=180)
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert url in lines[0] and "did not answer list_artifacts" in lines[0]
    assert "Traceback" not in done.stderr
    assert elapsed < 45, f"the one-line error came after {elapsed:.0f} s"


# -- many writers through one server -----------------------------------------------------
class Writers:
    """Client processes running :data:`WRITER`, started together behind a go-file."""

    def __init__(self, home: Path, root: Path, processes: int, count: int) -> None:
        self.go = root / "go"
        self.outs = [root / f"writer-{p}.out" for p in range(processes)]
        self.count = count
        self.procs: list[subprocess.Popen[str]] = []
        for p, out in enumerate(self.outs):
            with out.open("w") as stdout, (root / f"writer-{p}.err").open("w") as stderr:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", WRITER, f"p{p}", str(count), str(self.go)],
                    stdout=stdout, stderr=stderr, text=True, env=child_env(home)))

    def lines(self, p: int) -> list[list[str]]:
        return [line.split(" ", 3) for line in self.outs[p].read_text().splitlines()]

    def ready(self) -> list[list[str]]:
        wait_for(lambda: all(self.lines(p) for p in range(len(self.procs))), DEADLINE_S,
                 "every writer to start")
        return [self.lines(p)[0] for p in range(len(self.procs))]

    def start(self) -> None:
        self.go.touch()

    def successes(self) -> dict[str, int]:
        """value -> the version number its writer was told."""
        seen = {}
        for p in range(len(self.procs)):
            for line in self.lines(p):
                if line[0] == "ok":
                    assert line[1] not in seen, f"{line[1]} was reported twice"
                    seen[line[1]] = int(line[2])
        return seen

    def errors(self) -> list[str]:
        return [" ".join(line) for p in range(len(self.procs)) for line in self.lines(p)
                if line[0] == "error"]

    def wait(self) -> list[int]:
        deadline = time.monotonic() + DEADLINE_S
        try:
            return [proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                    for proc in self.procs]
        finally:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def committed_values(server: Server, name: str = "counter") -> dict[int, str]:
    """version number -> value, as the server has them."""
    versions = ServedCatalog(server.url, server.token).list_versions(name)
    found = {}
    for v in versions:
        assert v.inline_value is not None
        found[v.version] = json.loads(v.inline_value)
    return found


def test_8_writer_processes_through_one_server_number_every_commit_once(
        tmp_path: Path) -> None:
    processes, count = 8, 200
    home = fresh_home(tmp_path / "project")
    with serving(home, "--no-watch") as server:
        writers = Writers(home, tmp_path, processes, count)
        assert {tuple(line[:3]) for line in writers.ready()} == {
            ("ready", "ServedCatalog", server.url)}
        started = time.monotonic()
        writers.start()
        codes = writers.wait()
        elapsed = time.monotonic() - started
        assert writers.errors() == []
        assert codes == [0] * processes
        values = committed_values(server)
    wanted = {f"p{p}-{i}" for p in range(processes) for i in range(count)}
    assert sorted(values) == list(range(1, processes * count + 1))
    assert Counter(values.values()) == Counter(wanted)  # each value exactly once
    told = writers.successes()
    assert told == {value: number for number, value in values.items()}
    for p in range(processes):  # each writer's commits in its own order
        numbers = [told[f"p{p}-{i}"] for i in range(count)]
        assert numbers == sorted(numbers)
    server_log = "".join(path.read_text() for path in tmp_path.glob("serve-*.err"))
    assert "Conflicting lock" not in server_log and "Traceback" not in server_log
    print(f"{processes * count} commits through one server in {elapsed:.1f} s")


def test_kill_9_during_a_burst_then_a_restart_loses_and_duplicates_nothing(
        tmp_path: Path) -> None:
    processes, count = 4, 150
    home = fresh_home(tmp_path / "project")
    first = start_server(home, "--no-watch")
    try:
        writers = Writers(home, tmp_path, processes, count)
        writers.ready()
        writers.start()
        wait_for(lambda: len(writers.successes()) >= 100, DEADLINE_S,
                 "100 commits before the kill")
    finally:
        first.kill()
    at_kill = len(writers.successes())
    assert at_kill < processes * count, "the burst ended before the kill"
    time.sleep(1.0)  # the clients find nothing and keep retrying their writes
    assert all(proc.poll() is None for proc in writers.procs)
    second = start_server(home, "--no-watch")  # a new port, found through server.json
    try:
        assert second.url != first.url or second.token != first.token
        codes = writers.wait()
        assert writers.errors() == []
        assert codes == [0] * processes
        values = committed_values(second)
    finally:
        second.stop()
    told = writers.successes()
    assert len(told) == processes * count > at_kill
    assert sorted(values) == list(range(1, len(values) + 1))  # contiguous
    assert Counter(values.values()) == Counter(list(told))  # nothing twice or lost
    assert told == {value: number for number, value in values.items()}


def test_the_servers_watcher_fires_on_another_processs_commit_within_a_second(
        tmp_path: Path) -> None:
    home = fresh_home(tmp_path / "project")
    notebook = Path(__file__).parent / "notebooks" / "echo.ipynb"
    with serving(home) as server:  # with its watcher
        plan = (
            "import nbripple as nr\n"
            "ping = nr.Artifact('ping')\n"
            f"echo = nr.LaunchPlan('on_ping', notebook={str(notebook)!r},\n"
            "                      parameters={'text': 'pong'}, trigger=nr.OnArtifact(ping),\n"
            "                      concurrency=10)\n"
        )
        (tmp_path / "plans.py").write_text(plan)
        for args in (("register", str(tmp_path / "plans.py")), ("activate", "on_ping")):
            done = cli(home, *args)
            assert done.returncode == 0, done.stderr
        catalog = ServedCatalog(server.url, server.token)
        with server.client() as client:
            for n in range(1, 4):
                committed = which(home, "ping", f"ping {n}")
                assert committed["ref"] == f"ping@{n}"
                returned = time.monotonic()

                def fired(n: int = n) -> list[dict[str, Any]]:
                    rows: list[dict[str, Any]] = client.get("executions").json()
                    return [row for row in rows if row["trigger"] and row["trigger"].get(
                        "plan") == "on_ping" and row["trigger"].get("version") == n]

                rows = wait_for(fired, 10, f"the run fired by ping@{n}", interval=0.01)
                seen_after = time.monotonic() - returned
                assert len(rows) == 1
                execution = catalog.get_execution(str(rows[0]["id"]))
                version = catalog.get_version("ping", n)
                assert execution is not None and version is not None
                delay = (execution.started_at - version.created_at).total_seconds()
                assert delay < 1.0, delay
                assert seen_after < 1.0, seen_after

            wait_for(lambda: watcher_idle(client), DEADLINE_S, "the triggered runs to end")



def test_sigterm_lets_a_running_triggered_run_finish_and_commit_through_the_server(
        tmp_path: Path) -> None:
    """`nbripple serve` gives running executions its watcher's grace period on SIGTERM;
    in a served home those runs (and their kernels) reach the catalog through that
    server, so it must keep answering them until they have finished."""
    home = fresh_home(tmp_path / "project")
    with (home / "config.toml").open("a") as config:
        config.write("\n[watcher]\ngrace_period_s = 20\n")
    notebook = Path(__file__).parent / "notebooks" / "triggered_work.ipynb"
    (tmp_path / "plans.py").write_text(
        "import nbripple as nr\n"
        "item = nr.Artifact('work_item')\n"
        f"work = nr.LaunchPlan('work', notebook={str(notebook)!r}, parameters={{'seconds': 4}},\n"
        "                      trigger=nr.OnArtifact(item, inputs={'item': item}))\n")
    server = start_server(home)  # with its watcher
    try:
        for args in (("register", str(tmp_path / "plans.py")), ("activate", "work")):
            done = cli(home, *args)
            assert done.returncode == 0, done.stderr
        assert which(home, "work_item", "to do")["ref"] == "work_item@1"
        with server.client() as client:
            def running() -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = client.get("executions").json()
                return [r for r in rows if r["kind"] == "notebook" and r["status"] == "running"]

            run = wait_for(running, DEADLINE_S, "the triggered run to start")[0]
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)  # while the run sleeps its 4 s
        assert server.process.wait(timeout=DEADLINE_S) == 0
        stopped_after = time.monotonic() - started
    finally:
        server.kill()
    ws = nr.Workspace(home)
    try:
        execution = ws.catalog.get_execution(run["id"])
        assert execution is not None
        assert (execution.status, execution.error) == ("succeeded", None)
        assert [v.ref for v in ws.catalog.versions_produced_by(run["id"])] == ["done@1"]
    finally:
        EmbeddedCatalog.close_all()
    assert stopped_after < 20, f"the server took {stopped_after:.0f} s to stop"


def test_a_process_whose_server_stopped_first_still_exits_promptly(tmp_path: Path) -> None:
    """At exit a process marks its interactive execution finished — best effort (a
    later sweep marks it as orphaned anyway). When its server has stopped (cleanly:
    server.json removed), that last write must not hold the exit for the whole retry
    budget."""
    home = fresh_home(tmp_path / "project")
    go = tmp_path / "go"
    code = ("import sys, time\nfrom pathlib import Path\nimport nbripple as nr\n"
            "nr.Artifact('x').create_from(1)\nprint('committed', flush=True)\n"
            "while not Path(sys.argv[1]).exists():\n    time.sleep(0.01)\n")
    server = start_server(home, "--no-watch")
    try:
        client = subprocess.Popen([sys.executable, "-c", code, str(go)], text=True,
                                  stdout=subprocess.PIPE, env=child_env(home))
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "committed"
    finally:
        assert server.stop() == 0
    assert read_server_file(home) is None
    started = time.monotonic()
    go.touch()
    try:
        assert client.wait(timeout=DEADLINE_S) == 0
    finally:
        if client.poll() is None:
            client.kill()
        client.wait()
        client.stdout.close()
    exited_after = time.monotonic() - started
    assert exited_after < 10, f"the process took {exited_after:.0f} s to exit"
