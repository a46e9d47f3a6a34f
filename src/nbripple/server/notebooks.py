"""The endpoints about notebooks: an execution's executed notebook (for JupyterLab to
open it), the relaunch form, and runs of a notebook file by its path.

A notebook path is relative to the server's notebook root (``ServerContext.
notebook_root``): Jupyter's root directory when Jupyter hosts the API, the directory
``nbripple serve --root`` names (default: its working directory) for the standalone
server. A Jupyter server that forwards to an ``nbripple serve`` forwards the path as
it is, so it names a file of that server's root; paths never leave the root.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from tornado.ioloop import IOLoop

from ..service import api
from .handlers import SEGMENT, ApiHandler, bad_request


class ExecutionNotebook(ApiHandler):
    async def get(self, execution_id: str) -> None:
        which = self.one(self.query("which"), "which", "output") or "output"
        await self.answer(api.execution_notebook, execution_id, which)


class RelaunchForm(ApiHandler):
    async def get(self, execution_id: str) -> None:
        self.query()
        await self.answer(api.relaunch_form, execution_id)


class NotebookForm(ApiHandler):
    async def get(self) -> None:
        path = self.one(self.query("path"), "path")
        if not path:
            raise bad_request("notebooks/form needs ?path=, a notebook path relative to the "
                              "server's notebook root")
        await self.answer(api.notebook_form, self.ctx.notebook_root, path)


class NotebookRun(ApiHandler):
    async def post(self) -> None:
        self.query()
        body = self.json_body()
        unknown = sorted(set(body) - {"path", "parameters"})
        if unknown:
            raise bad_request(f"unknown field(s) {', '.join(unknown)}; notebooks/run takes "
                              '{"path": "dir/notebook.ipynb", "parameters": {...}}')
        path, parameters = body.get("path"), body.get("parameters", {})
        if not isinstance(path, str) or not path:
            raise bad_request("path must be a notebook path relative to the server's "
                              "notebook root, as a string")
        if not isinstance(parameters, dict):
            raise bad_request("parameters must be an object of parameter names to values")
        job = functools.partial(api.run_notebook, self.ctx.ws, self.ctx.runs(),
                                self.ctx.notebook_root, path, parameters)
        result: dict[str, Any] = await IOLoop.current().run_in_executor(self.ctx.pool, job)
        self.set_status(202)
        self.set_header("Location", f"../executions/{result['id']}")  # one deep
        self.finish(json.dumps(result, ensure_ascii=False))


NOTEBOOK_ROUTES: list[tuple[str, type[ApiHandler]]] = [
    (f"executions/{SEGMENT.format('execution_id')}/notebook", ExecutionNotebook),
    (f"executions/{SEGMENT.format('execution_id')}/form", RelaunchForm),
    ("notebooks/form", NotebookForm),
    ("notebooks/run", NotebookRun),
]
"""The notebook endpoints, relative to the base path."""

__all__ = ["NOTEBOOK_ROUTES"]
