"""Fixtures for browser tests: a real JupyterLab server and a Debian chromium page.

* ``lab_server`` (module scope): ``python -m jupyterlab`` as a subprocess on 127.0.0.1
  with a free port and a token, run as root if need be (``--allow-root``), its root
  directory and every Jupyter config/data/runtime/settings directory in a temporary
  directory, and ``NBRIPPLE_HOME`` pointing at a fresh home there. It is stopped by its
  pid at teardown (SIGTERM, which shuts its kernels down, then SIGKILL to its process
  group if it hangs).
* ``browser`` (module scope): Playwright driving ``/usr/bin/chromium`` (Playwright's own
  browser downloads are impossible here; ``.ci/install-browser`` installs Debian's).
* ``lab`` (function scope): a fresh page on that server plus helpers to open a notebook,
  run all its cells and run code in its live kernel. Console messages and page errors
  are collected; on a failed test a screenshot, the console log and the server log are
  left in the server's temporary directory (the path is printed).

The browser tests skip only when chromium is missing *and* apt cannot install it; under
CI (``CI`` set) a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_SRC = Path(__file__).resolve().parents[2] / "src"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SERVER_START_TIMEOUT = 90.0  # seconds until /lab answers 200
VIEWPORT = {"width": 1400, "height": 1000}

# Console text that means a widget failed to load or render (ipywidgets' manager and
# the output area print these).
WIDGET_ERROR_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"Failed to load model class",
        r"Failed to load view class",
        r"Error displaying widget",
        r"Could not create (a )?(model|view)",
        r"Could not instantiate widget",
        r"Class \S+ not found in (module|registry)",
        r"No version of module \S+ is registered",
        r"Module \S+ not found",
        r"Error (creating|rendering) widget",
        r"Model not found",
    )
]
# Known harmless: ipycytoscape 1.3.3 declares @jupyter-widgets/base ^4 || ^5 while
# JupyterLab 4 ships 6.x as a shared singleton (see STACK-NOTES).
HARMLESS_PATTERNS = [
    re.compile(r"Unsatisfied version .* of shared singleton module @jupyter-widgets/base"),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real JupyterLab in Debian chromium (tests/browser)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


# -- the browser ------------------------------------------------------------------
def _chromium_installable() -> bool:
    """True when apt knows a chromium candidate (so a missing browser is a setup error)."""
    if shutil.which("apt-cache") is None:
        return False
    try:
        out = subprocess.run(["apt-cache", "policy", "chromium"], capture_output=True,
                             text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    match = re.search(r"Candidate:\s*(\S+)", out)
    return bool(match and match.group(1) != "(none)")


def require_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    hint = "run .ci/install-browser (apt-get install chromium) first"
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing under CI: {hint}", pytrace=False)
    if _chromium_installable():
        pytest.fail(f"{CHROMIUM} is missing but installable: {hint}", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing and apt has no chromium to install")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS,
                                    headless=True)
        try:
            yield browser
        finally:
            browser.close()


# -- the server -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LabServer:
    """A running JupyterLab subprocess."""

    base_url: str
    token: str
    root: Path  # ServerApp.root_dir: notebooks go here
    home: Path  # the kernels' NBRIPPLE_HOME
    tmp: Path  # everything of this server, and failure artifacts
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path.lstrip('/')}{sep}token={self.token}"

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _start_lab(tmp: Path, port: int, home_base: Path | None = None) -> LabServer:
    import nbripple as nr

    root = tmp / "root"
    root.mkdir()
    home = nr.init_home(home_base or tmp / "home")
    token = secrets.token_hex(16)
    settings = tmp / "jupyter" / "lab-settings"
    # No "get notified about Jupyter news?" toast over the page.
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false"}), encoding="utf-8")
    env = dict(os.environ)
    for key in ("JPY_SESSION_NAME", "JUPYTER_TOKEN", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
        env.pop(key, None)
    env.update({
        "NBRIPPLE_HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(tmp / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(tmp / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "jupyter" / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "jupyter" / "lab-workspaces"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    })
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LanguageServerManager.autodetect=False",
    ]
    # The sidebar built from this checkout's sources (`jlpm build` in labextension/
    # writes src/nbripple/labextension) comes before any installed copy: a worktree or
    # a clone tests its own build. Extra paths are searched first, for the page's list
    # of extensions and for their files alike, as <path>/<name>/: a copy of the build
    # under its package name (src/nbripple itself would list the build but serve the
    # installed copy's files, whose names differ).
    built = REPO_SRC / "nbripple" / "labextension"
    if (built / "package.json").exists():
        extensions = tmp / "labextensions"
        shutil.copytree(built, extensions / "nbripple")
        cmd.append(f"--LabApp.extra_labextensions_path={extensions}")
    log = tmp / f"jupyterlab-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return LabServer(f"http://127.0.0.1:{port}/", token, root, home, tmp, log, process)


def _wait_until_up(server: LabServer) -> bool:
    """Poll /lab until it answers 200; False when the process died (e.g. port taken)."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(server.url("lab"), timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    _stop(server)
    raise AssertionError(f"JupyterLab did not answer 200 on /lab within "
                         f"{SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}")


def _stop(server: LabServer) -> None:
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # the server shuts its kernels down
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: pgid == pid
            process.wait(timeout=10)


@contextlib.contextmanager
def running_lab(tmp: Path, home_base: Path | None = None) -> Iterator[LabServer]:
    """A JupyterLab up on a free port (three tries), stopped on exit. ``home_base``: the
    directory of an nbripple home prepared before (else a fresh one in ``tmp``)."""
    for attempt in range(3):
        attempt_tmp = tmp / f"attempt{attempt}"
        attempt_tmp.mkdir()
        server = _start_lab(attempt_tmp, _free_port(), home_base)
        if _wait_until_up(server):
            break
        _stop(server)
    else:
        raise AssertionError(f"JupyterLab exited during start-up:\n{server.log_tail()}")
    try:
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="module")
def lab_home_base() -> Path | None:
    """The directory of an nbripple home prepared before JupyterLab starts (a test
    module overrides this to fill one); None: a fresh home."""
    return None


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory, lab_home_base: Path | None
               ) -> Iterator[LabServer]:
    require_chromium()  # no point starting a server the test cannot drive
    with running_lab(tmp_path_factory.mktemp("jupyterlab"), lab_home_base) as server:
        yield server


# -- a page on the server, with helpers ---------------------------------------------
@dataclass
class BrowserLog:
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def widget_errors(self) -> list[str]:
        """Console errors/warnings and page errors that say a widget failed to load."""
        lines = [*self.console, *(f"pageerror: {e}" for e in self.page_errors)]
        return [line for line in lines
                if any(p.search(line) for p in WIDGET_ERROR_PATTERNS)
                and not any(p.search(line) for p in HARMLESS_PATTERNS)]

    def uncaught(self) -> list[str]:
        """Page errors (uncaught exceptions and rejections) not known to be harmless."""
        return [e for e in self.page_errors if not any(p.search(e) for p in HARMLESS_PATTERNS)]

    def dump(self) -> str:
        return "\n".join([*self.console, *(f"pageerror: {e}" for e in self.page_errors)])


# Runs code in the live kernel of the current notebook and returns its output.
_KERNEL_EXEC_JS = """
async (code) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({code, silent: false, store_history: false});
  let stdout = '', stderr = '', result = '', error = '';
  future.onIOPub = (msg) => {
    const c = msg.content;
    switch (msg.header.msg_type) {
      case 'stream':
        if (c.name === 'stderr') { stderr += c.text; } else { stdout += c.text; }
        break;
      case 'execute_result': result += c.data['text/plain'] || ''; break;
      case 'error':
        error += c.ename + ': ' + c.evalue + '\\n' + (c.traceback || []).join('\\n');
        break;
    }
  };
  const reply = await future.done;
  return {status: reply.content.status, stdout, stderr, result, error};
}
"""

# Every code cell of the current notebook: its execution count and its error outputs.
_CELL_STATE_JS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells;
  const state = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') { continue; }
    const outputs = cell.outputs.toJSON();
    const errors = outputs.filter(o => o.output_type === 'error')
      .map(o => o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'));
    state.push({index: i, count: cell.executionCount, errors});
  }
  return state;
}
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Lab:
    """A chromium page on a JupyterLab server, with notebook helpers."""

    server: LabServer
    page: Any = field(repr=False)  # playwright.sync_api.Page
    log: BrowserLog = field(repr=False)

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = self.server.root / name
        nbformat.write(nb, path)
        return path

    def open_notebook(self, name: str, timeout: float = 60.0) -> None:
        """Open ``name`` in JupyterLab and wait until its kernel is idle."""
        self.page.goto(self.server.url(f"lab/tree/{name}"))
        self.page.wait_for_function(
            """(name) => {
              const app = window.jupyterapp;
              const w = app && app.shell.currentWidget;
              const k = w && w.sessionContext && w.sessionContext.session
                        && w.sessionContext.session.kernel;
              return w && w.context && w.context.path === name && k && k.status === 'idle';
            }""",
            arg=name, timeout=timeout * 1000, polling=200,
        )

    def run_all_cells(self, timeout: float = 90.0) -> list[dict[str, Any]]:
        """Run every cell (the command a user clicks); fail on a cell error."""
        self.page.evaluate(
            "() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_function(
            f"""() => {{
              const state = ({_CELL_STATE_JS})();
              const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
              return state.some(c => c.errors.length)
                || (state.every(c => c.count !== null) && k.status === 'idle');
            }}""",
            timeout=timeout * 1000, polling=250,
        )
        state: list[dict[str, Any]] = self.page.evaluate(_CELL_STATE_JS)
        errors = [f"cell {c['index']}: {_ANSI.sub('', e)}" for c in state for e in c["errors"]]
        assert not errors, "a cell failed:\n" + "\n".join(errors)
        return state

    def kernel(self, code: str, timeout: float = 30.0) -> str:
        """Run ``code`` in the notebook's live kernel; return its stdout (fail on error)."""
        reply: dict[str, str] = self.page.evaluate(_KERNEL_EXEC_JS, code)
        assert reply["status"] == "ok", f"kernel error: {_ANSI.sub('', reply['error'])}"
        return reply["stdout"] + reply["result"]

    def kernel_json(self, expression: str) -> Any:
        """Evaluate a Python expression in the live kernel and return it JSON-decoded."""
        out = self.kernel(f"import json as _j; print(_j.dumps({expression}, default=str))")
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def lab(lab_server: LabServer, browser: Any, request: pytest.FixtureRequest
        ) -> Iterator[Lab]:
    log = BrowserLog()
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda m: log.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    try:
        yield Lab(lab_server, page, log)
    finally:
        if _failed(request):
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            shot = lab_server.tmp / f"{stem}-failure.png"
            with contextlib.suppress(Exception):
                page.screenshot(path=str(shot), full_page=True)
            (lab_server.tmp / f"{stem}-console.log").write_text(log.dump(), encoding="utf-8")
            print(f"\nbrowser test artifacts: {shot}, {stem}-console.log and "
                  f"{lab_server.log.name} in {lab_server.tmp}")
        context.close()
