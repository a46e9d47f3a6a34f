"""The local executor's pool: forked warm processes, readiness, fallbacks, and no
process outliving its owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import nbripple as nr
from nbripple.executors import LocalExecutor, RunJob
from nbripple.forking import Worker
from nbripple.service.executions import make_execution
from waiting import wait_for


@pytest.fixture
def executor() -> Iterator[LocalExecutor]:
    made: list[LocalExecutor] = []

    def make(**options: object) -> LocalExecutor:
        ex = LocalExecutor(**options)  # type: ignore[arg-type]
        ex.start(os.getpid())
        made.append(ex)
        return ex

    yield make  # type: ignore[misc]
    for ex in made:
        ex.shutdown()


def idle_ready(ex: LocalExecutor, count: int) -> list[object]:
    with ex._lock:
        idle = list(ex._idle)
    ready = [proc for proc in idle if proc.ready()]
    return ready if len(ready) >= count else []


def env_notebook(path: Path) -> Path:
    nb = new_notebook()
    params = new_code_cell("out = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(
        "import json, os\n"
        "open(out, 'w').write(json.dumps({'mark': os.environ.get('NBRIPPLE_TEST_MARK')}))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(path))
    return path


def submit(ex: LocalExecutor, ws: nr.Workspace, notebook: Path, out: Path) -> str:
    execution = make_execution("notebook", status="queued", notebook=str(notebook),
                               trigger={"kind": "manual"}, label=notebook.name)
    ws.catalog.create_execution(execution)
    ws.catalog.close()
    ex.submit(RunJob(execution_id=execution.id, home=str(ws.home), notebook=str(notebook),
                     parameters={"out": str(out)}, watcher_pid=os.getpid()))
    return execution.id


def finished(ws: nr.Workspace, execution_id: str) -> nr.Execution:
    def ended() -> nr.Execution | None:
        run = ws.execution(execution_id)
        ws.catalog.close()  # leave the file to the run in between
        return run if run.status not in ("queued", "running") else None

    run = wait_for(ended, 120, "the run to end")
    assert run.status == "succeeded", run.error
    return run


def test_warm_processes_are_forked_in_their_own_sessions_and_say_when_ready(executor):
    ex = executor(warm=2)
    ready = wait_for(lambda: idle_ready(ex, 2), 120, "two warm processes to be ready")
    server = ex._forks._proc.pid  # type: ignore[union-attr]
    for proc in ready:
        assert isinstance(proc, Worker)
        assert psutil.Process(proc.pid).ppid() == server  # forked by the fork server
        assert os.getsid(proc.pid) == proc.pid  # Ctrl-C here never reaches a run
        assert psutil.Process(proc.pid).children()  # its kernel, started ahead
    pids = [proc.pid for proc in ready]
    ex.shutdown()
    for pid in [*pids, server]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_without_the_fork_server_warm_processes_still_say_when_ready(executor):
    ex = executor(warm=1, fork_server=False)
    (proc,) = wait_for(lambda: idle_ready(ex, 1), 120, "the warm process to be ready")
    assert not isinstance(proc, Worker)
    assert ex._forks is None


class Fake:
    """A warm process that is (or is not yet) ready: records the job it gets."""

    def __init__(self, ready: bool) -> None:
        self.pid = 0
        self.is_ready = ready
        self.got: bytes | None = None

    def poll(self) -> int | None:
        return None

    def ready(self) -> bool:
        return self.is_ready

    def send(self, data: bytes) -> bool:
        self.got = data
        return True

    def close_input(self) -> None:
        pass


def test_a_job_goes_to_a_ready_process_before_an_older_one_still_starting():
    ex = LocalExecutor(warm=0)
    booting, ready = Fake(ready=False), Fake(ready=True)
    ex._idle = [booting, ready]  # type: ignore[list-item]
    ex.submit(RunJob(execution_id="first", home="/nowhere", notebook="x.ipynb"))
    assert ready.got is not None and booting.got is None
    assert ex._idle == [booting]
    # with none ready, the one that started first (closest to ready) gets it
    ex.submit(RunJob(execution_id="second", home="/nowhere", notebook="x.ipynb"))
    assert booting.got is not None and ex._idle == []
    ex._procs.clear()
    ex.shutdown()


def test_a_forked_run_gets_the_environment_of_the_moment_it_was_forked(
        executor, home, ws, tmp_path, monkeypatch):
    monkeypatch.setenv("NBRIPPLE_TEST_MARK", "before")
    ex = executor(warm=1)
    wait_for(lambda: idle_ready(ex, 1), 120, "the warm process to be ready")
    monkeypatch.setenv("NBRIPPLE_TEST_MARK", "after")  # the fork server has the old one
    notebook = env_notebook(tmp_path / "env.ipynb")
    first = submit(ex, ws, notebook, tmp_path / "first.json")
    finished(ws, first)
    # the warm process was started before the change; its replacement after it
    assert json.loads((tmp_path / "first.json").read_text())["mark"] == "before"
    wait_for(lambda: idle_ready(ex, 1), 120, "the replacement to be ready")
    second = submit(ex, ws, notebook, tmp_path / "second.json")
    finished(ws, second)
    assert json.loads((tmp_path / "second.json").read_text())["mark"] == "after"


def test_fresh_runs_are_forked_once_the_server_is_up_and_spawned_when_it_is_gone(
        executor, home, ws, tmp_path):
    ex = executor(warm=0)
    notebook = env_notebook(tmp_path / "env.ipynb")
    first = submit(ex, ws, notebook, tmp_path / "a.json")  # starts the fork server
    assert not isinstance(ex._procs[first], Worker)  # which is still importing
    finished(ws, first)
    wait_for(lambda: ex._forks is not None and ex._forks.ready, 60, "the fork server")
    second = submit(ex, ws, notebook, tmp_path / "b.json")
    assert isinstance(ex._procs[second], Worker)
    finished(ws, second)
    ex._forks._proc.kill()  # type: ignore[union-attr]
    ex._forks._proc.wait(timeout=10)  # type: ignore[union-attr]
    gone = ex._forks
    third = submit(ex, ws, notebook, tmp_path / "c.json")
    assert not isinstance(ex._procs[third], Worker)
    finished(ws, third)
    assert (tmp_path / "c.json").exists()
    # a new fork server was started at once, for the runs after it
    wait_for(lambda: ex._forks not in (None, gone) and ex._forks.ready, 60, "a new server")
    fourth = submit(ex, ws, notebook, tmp_path / "d.json")
    assert isinstance(ex._procs[fourth], Worker)
    finished(ws, fourth)


OWNER = """
import os, sys, time
from nbripple.executors import LocalExecutor
ex = LocalExecutor(warm=2)
ex.start(os.getpid())
while True:
    with ex._lock:
        idle = list(ex._idle)
    if len(idle) == 2 and all(p.ready() for p in idle):
        break
    time.sleep(0.05)
print(ex._forks._proc.pid, *[p.pid for p in idle], flush=True)
time.sleep(600)
"""


def test_kill_9_of_the_owner_ends_the_fork_server_its_warm_processes_and_kernels():
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline()  # type: ignore[union-attr]
        pids = [int(pid) for pid in line.split()]
        assert len(pids) == 3, line
        family = [psutil.Process(pid) for pid in pids]
        family += [kid for proc in family[1:] for kid in proc.children(recursive=True)]
        assert len(family) >= 5  # the server, two warm processes and their kernels
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)

        def all_gone() -> bool:
            return not [p for p in family if p.is_running() and p.status() != "zombie"]

        wait_for(all_gone, 30, "the fork server, warm processes and kernels to end")
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.wait(timeout=10)
        owner.stdout.close()  # type: ignore[union-attr]
