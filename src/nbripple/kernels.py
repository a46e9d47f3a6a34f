"""The kernel of a notebook run: which one, starting it, entering the run, stopping it.

* :func:`resolve_kernel` names the kernel as papermill and jupyter_client do: the
  caller's name, else the notebook's kernelspec, refused when there is neither;
  ``python`` is jupyter_client's alias of ``python3``.
* :func:`start_and_enter` starts the kernel (unless it was started before the run, as
  an executor's warm kernel is), waits until it answers within the start-up timeout and
  enters the run context with a *silent* execute request: no cell is added and the
  execution counts stay papermill's.
* :class:`RunGuard` turns SIGINT/SIGTERM and the whole-run timeout into a kernel
  interrupt, so papermill records the interrupted cell and saves the notebook; a second
  signal (or a kernel that ignores the interrupt) stops the wait.
"""

from __future__ import annotations

import _thread
import contextlib
import inspect
import logging
import queue
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from .errors import NbrippleError

NATIVE_KERNEL = "python3"
INTERRUPT_GRACE_S = 10.0


class KernelNotFound(NbrippleError):
    """The requested kernel is not installed."""


class KernelStartError(RuntimeError):
    """The kernel did not start, or did not answer within the start-up timeout (the
    runner records it as the run's error; it never leaves the runner)."""


def resolve_kernel(nb: Any, kernel_name: str | None, label: str) -> str:
    """The kernel a run uses, exactly as papermill resolves it; KernelNotFound when
    the notebook names none and none is given, or it is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name")
    if not name:
        raise KernelNotFound(
            f"{label} has no kernelspec, so its kernel is unknown (papermill refuses it too); "
            "choose one with --kernel NAME (kernel_name= in Python), e.g. --kernel python3"
        )
    if name == "python":  # jupyter_client's KernelManager alias
        name = NATIVE_KERNEL
    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(name)
    except NoSuchKernel as exc:
        available = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise KernelNotFound(
            f"no Jupyter kernel named {name!r} (installed: {available}); install it or choose "
            "one with --kernel NAME (kernel_name= in Python)"
        ) from exc
    return str(name)


def kernel_manager(kernel_name: str, tmp: Path) -> Any:
    """A fresh kernel manager for one run, on local (ipc) sockets in ``tmp``.

    The runner owns it (papermill's ``km=``), which is also how a pre-started kernel
    is handed over; it records the clients nbclient makes so they are closed.
    """
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.clients: list[Any] = []
            self.entered: Any = None  # the client that entered the run, for nbclient

        def client(self, **kwargs: Any) -> Any:
            if self.entered is not None:  # nbclient's client: the one that entered
                kc, self.entered = self.entered, None
                return kc
            kc = super().client(**kwargs)
            self.clients.append(kc)
            return kc

    return RunKernelManager(kernel_name=kernel_name, transport="ipc", ip=str(tmp / "kernel"))


def kill(km: Any) -> None:
    """Kill the run's kernel now (SIGKILL to its process group), without waiting for it
    to exit: from here on it can neither stage nor hold anything, and :func:`shutdown`
    reaps it later, when the run's outcome is committed."""
    from jupyter_core.utils import run_sync

    async def signal_kill() -> None:
        sent = km.signal_kernel(signal.SIGKILL)
        if inspect.isawaitable(sent):
            await sent

    if km.has_kernel:
        with contextlib.suppress(Exception):  # gone already: shutdown deals with it
            run_sync(signal_kill)()


def shutdown(km: Any) -> None:
    """Close the run's clients and stop its kernel process."""
    from jupyter_core.utils import run_sync

    for kc in getattr(km, "clients", []):
        kc.stop_channels()
    if km.has_kernel:
        run_sync(km.shutdown_kernel)(now=True)


def enter_code(execution_id: str, home: Path, cwd: Path) -> str:
    # Only literals built with repr() reach the kernel: ids and paths never become code.
    return (
        "import nbripple.context as _nbripple_context\n"
        f"_nbripple_context.enter({execution_id!r}, home={str(home)!r}, cwd={str(cwd)!r})\n"
        "del _nbripple_context"
    )


# What a run's first catalog use imports (the workspace, its catalog and store, the
# served-mode discovery) and a version's repr, imported lazily by ``import nbripple``.
PRELOADED_MODULES = ("nbripple.workspace", "nbripple.api", "nbripple.artifact",
                     "nbripple.context", "nbripple.discovery", "nbripple.display")


def preload_code() -> str:
    """What a pre-started kernel does before any run: import nbripple with what a
    run's first ``nr.load`` or ``create_from`` needs, and the heavy libraries its kinds
    use (pyarrow, pandas when installed), and make the in-memory DuckDB database the
    run's catalog file will be attached to (DuckDB's first connection in a notebook
    imports ipywidgets, for its progress bar). No user code runs, no catalog is
    opened, and each run still gets a kernel of its own."""
    return (
        "import importlib.util as _nbripple_util\n"
        "import nbripple\n"
        f"for _nbripple_name in {PRELOADED_MODULES!r}:\n"
        "    __import__(_nbripple_name)\n"
        "for _nbripple_name in ('pyarrow', 'pyarrow.parquet', 'pandas'):\n"
        "    if _nbripple_util.find_spec(_nbripple_name.split('.')[0]) is not None:\n"
        "        __import__(_nbripple_name)\n"
        "from nbripple.catalog.embedded import host as _nbripple_host\n"
        "_nbripple_host.prepare()\n"
        "del _nbripple_util, _nbripple_name, _nbripple_host"
    )


def start_and_enter(km: Any, code: str, cwd: Path, start_timeout: float, *,
                    hand_over: bool = True) -> None:
    """Start ``km``'s kernel in ``cwd`` unless it runs already, wait for it and run
    ``code`` silently (no output, no history, no execution count).

    With ``hand_over``, the client that ran ``code`` — shown to reach the kernel on
    both its shell and IOPub channels — is the one ``km.client()`` returns next (to
    nbclient), so the run skips a second client's ``wait_for_ready`` (0.2 s or more of
    waiting for IOPub to go quiet)."""
    from jupyter_core.utils import run_sync

    run_sync(_start_and_enter)(km, code, cwd, start_timeout, hand_over)


async def _start_and_enter(km: Any, code: str, cwd: Path, start_timeout: float,
                           hand_over: bool = False) -> None:
    import asyncio

    if not km.has_kernel:
        try:
            await asyncio.wait_for(km.start_kernel(cwd=str(cwd)), start_timeout)
        except TimeoutError as exc:
            raise KernelStartError(_start_hint(km, start_timeout)) from exc
    kc = km.client()
    kc.start_channels()
    try:
        # No wait_for_ready(): it spends 0.2 s letting IOPub go quiet. The request waits
        # in the shell socket until the kernel answers; a kernel that dies or never
        # answers within start_timeout is a KernelStartError.
        msg_id = kc.execute(code, silent=True, store_history=False)
        deadline = time.monotonic() + start_timeout
        await _answered(km, kc, msg_id, deadline, start_timeout)
        if hand_over and hasattr(km, "entered") and await _idle_on_iopub(kc, msg_id,
                                                                          deadline):
            # nbclient starts the channels of the client it is given and waits for it to
            # be ready: these are started and shown to work already
            kc.start_channels = _already_started
            kc.wait_for_ready = _ready_at_once
            km.entered = kc
            kc = None
    finally:
        if kc is not None:
            kc.stop_channels()


def _already_started(*args: Any, **kwargs: Any) -> None:
    """``start_channels`` of a client whose channels are running."""


async def _ready_at_once(timeout: float | None = None) -> None:
    """``wait_for_ready`` of a client that has just had its answers from the kernel."""


async def _idle_on_iopub(kc: Any, msg_id: str, deadline: float) -> bool:
    """Wait for the kernel's ``idle`` status for ``msg_id`` on IOPub: once it came,
    the client's subscription gets everything the kernel publishes later (False if it
    did not come in time: the caller then leaves the client to the usual checks)."""
    while time.monotonic() < deadline:
        try:
            msg = await kc.get_iopub_msg(timeout=0.25)
        except queue.Empty:
            continue
        if msg.get("parent_header", {}).get("msg_id") == msg_id \
                and msg.get("msg_type") == "status" \
                and msg.get("content", {}).get("execution_state") == "idle":
            return True
    return False


async def _answered(km: Any, kc: Any, msg_id: str, deadline: float,
                    start_timeout: float) -> None:
    """Wait for the shell reply to ``msg_id``; KernelStartError if the kernel dies, does
    not answer in time or the code failed."""
    while True:
        try:
            reply = await kc.get_shell_msg(timeout=0.25)
        except queue.Empty:
            alive = km.is_alive()
            if inspect.isawaitable(alive):
                alive = await alive
            if not alive:
                raise KernelStartError(f"the {km.kernel_name} kernel died while it "
                                       "started") from None
            if time.monotonic() > deadline:
                raise KernelStartError(_start_hint(km, start_timeout)) from None
            continue
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            break
    content = reply.get("content", {})
    if content.get("status") != "ok":
        raise KernelStartError(
            f"the {km.kernel_name} kernel could not enter the run "
            f"({content.get('ename')}: {content.get('evalue')}); is nbripple installed "
            "in the kernel's environment?"
        )


def _start_hint(km: Any, start_timeout: float) -> str:
    return (
        f"the {km.kernel_name} kernel did not start within {start_timeout:g} s; raise it with "
        "--start-timeout or [run] start_timeout_s in config.toml"
    )


class RunGuard:
    """While a run executes (main thread only): SIGINT/SIGTERM and the whole-run
    timeout interrupt the kernel, and :attr:`reason` says why; if the kernel does not
    give up the cell within the grace period, or a second signal comes, the wait is
    broken with KeyboardInterrupt."""

    def __init__(self, km: Any, run_timeout: float | None) -> None:
        self._km = km
        self._run_timeout = run_timeout
        self.reason: str | None = None  # "interrupted", "terminated", "timeout"
        self._previous: dict[int, Any] = {}
        self._timers: list[threading.Timer] = []
        self._forced = False
        self._done = threading.Event()

    def __enter__(self) -> RunGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        if self._run_timeout is not None:
            timer = threading.Timer(self._run_timeout, self._stop, ("timeout",))
            timer.daemon = True
            timer.start()
            self._timers.append(timer)
        logging.getLogger("asyncio").addFilter(_drop_orphan_tasks)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for timer in self._timers:
            timer.cancel()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.reason is not None or self._forced:
            self._forced = True
            raise KeyboardInterrupt
        self._stop("terminated" if signum == signal.SIGTERM else "interrupted")

    def _stop(self, reason: str) -> None:
        if self._done.is_set() or self.reason is not None:
            return
        self.reason = reason
        threading.Thread(target=self._interrupt, name="nbripple-interrupt", daemon=True).start()

    def _interrupt(self) -> None:
        import asyncio

        try:
            if self._km.has_kernel:  # a loop of this thread's own, closed afterwards
                asyncio.run(self._km.interrupt_kernel())
        except Exception:  # a dead kernel: the run is ending anyway
            pass
        if not self._done.wait(INTERRUPT_GRACE_S) and self._previous:
            self._forced = True
            _thread.interrupt_main(signal.SIGINT)


class _DropOrphanTasks(logging.Filter):
    # nbclient's background tasks outlive a run broken by a signal; their
    # "Task exception was never retrieved" reports say nothing the run record does not.
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Task exception was never retrieved")


_drop_orphan_tasks = _DropOrphanTasks()
