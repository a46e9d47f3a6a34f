"""The Jupyter server extension (`nbripple.server.extension`) on real Jupyter servers.

pytest_jupyter's server (`jp_serverapp`: a real jupyter_server on a free port, base URL
`/a%40b/`) loads the extension from this configuration (it reads no installed
`jupyter_server_config.d/`, so the wheel's `nbripple.json` is tested on a built wheel,
at the end). Its fixtures are imported
into this module only, so its autouse fixtures (a fresh event loop, a server cleanup)
touch no other test; the tests drive that loop themselves.

pytest_jupyter's server never runs the extensions' start hooks (a running server does,
once it listens): the `ext` fixture runs them. The home is written before the server
starts (the serving extension then holds the DuckDB file), and through the API after.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jupyter_server
import pytest
import tornado.web
from jupyter_client.blocking import BlockingKernelClient
from jupyter_server.serverapp import ServerApp
from pytest_jupyter.jupyter_server import *  # noqa: F403  (a real Jupyter server's fixtures)
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets.config import Config

import nbripple as nr
from nbripple.catalog import EmbeddedCatalog
from nbripple.server import BASE_PATH, ServerContext, make_app, route_table
from nbripple.server.discovery import live_server, read_server_file, server_file
from nbripple.server.extension import NbrippleApp, kernel_url
from nbripple.server.hosted import JupyterHosted
from test_server import Server, expected, make_home, start_server
from waiting import wait_for

SRC = Path(__file__).resolve().parents[1] / "src"
VERBS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
IMPLEMENTED = ("get", "post", "put", "delete", "patch")

Call = Callable[..., HTTPResponse]


# -- the servers ---------------------------------------------------------------------
@pytest.fixture
def data_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A home with versions, cards and plans (tests/test_server.py's), and what the
    service answers for its reads; the extension finds it as every process does
    (NBRIPPLE_HOME)."""
    home = make_home(tmp_path_factory.mktemp("ext"))
    with (home / "config.toml").open("a") as config:
        config.write("\n[executor.options]\nwarm = 0\n")  # a watcher starts no kernel
    answers = expected(home)
    monkeypatch.setenv("NBRIPPLE_HOME", str(home))
    yield home, answers
    EmbeddedCatalog.close_all()


@pytest.fixture
def allow_unauthenticated_access() -> bool:
    """Jupyter's own default is True; False makes Jupyter refuse undecorated endpoints."""
    return False


@pytest.fixture
def nbripple_config() -> dict[str, Any]:
    """The test's `c.NbrippleApp` settings (none: the home is found, not configured)."""
    return {}


@pytest.fixture
def jp_server_config(data_home: tuple[Path, dict[str, Any]], allow_unauthenticated_access: bool,
                     nbripple_config: dict[str, Any]) -> Config:
    """nbripple's extension alone (pytest_jupyter adds jupyter_server_terminals, whose
    websocket Jupyter itself warns about when unauthenticated access is refused)."""
    extensions = {"nbripple": True, "jupyter_server_terminals": False}
    return Config({
        "ServerApp": {"jpserver_extensions": extensions,
                      "allow_unauthenticated_access": allow_unauthenticated_access},
        "NbrippleApp": nbripple_config,
    })


@pytest.fixture
def ext(jp_serverapp: ServerApp, jp_asyncio_loop: Any) -> NbrippleApp:
    """The extension of the running server, started as a listening server starts it."""
    manager = jp_serverapp.extension_manager
    jp_asyncio_loop.run_until_complete(manager.start_all_extensions())
    app = manager.extension_points["nbripple"].app
    assert isinstance(app, NbrippleApp)
    return app


@pytest.fixture
def raw(ext: NbrippleApp, http_server_client: Any, jp_asyncio_loop: Any) -> Call:
    """``raw(method, path, headers=..., body=...)``: one request to the Jupyter server
    (``path`` from its root; or a whole URL), its response whatever the status."""
    def call(method: str, path: str, headers: dict[str, str] | None = None,
             body: bytes | str | None = None) -> HTTPResponse:
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        fetch = AsyncHTTPClient().fetch if path.startswith("http") else http_server_client.fetch
        return jp_asyncio_loop.run_until_complete(fetch(
            path, method=method, headers=headers or {}, body=body, raise_error=False,
            allow_nonstandard_methods=True, follow_redirects=False))
    return call


@pytest.fixture
def api(raw: Call, jp_base_url: str) -> Call:
    """``api(method, path, ...)``: ``raw`` under the API's base (path relative to it)."""
    def call(method: str, path: str, **kwargs: Any) -> HTTPResponse:
        return raw(method, f"{jp_base_url}nbripple/api/{path}", **kwargs)
    return call


def nbripple_token(home: Path) -> dict[str, str]:
    info = read_server_file(home)
    assert info is not None, "no server.json"
    return {"Authorization": f"token {info.token}"}


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body or b"null")


def assert_api_error(response: HTTPResponse, status: int, error: str | None = None) -> None:
    assert response.code == status, (response.code, response.body)
    data = body(response)
    assert set(data) == {"error", "message"}, data
    assert data["message"] and "\n" not in data["message"]
    assert b"Traceback" not in (response.body or b"")
    if error is not None:
        assert data["error"] == error, data


# -- serving the home ----------------------------------------------------------------
def test_reads_answer_through_jupyter_what_the_service_answers(
        ext: NbrippleApp, jp_fetch: Any, jp_asyncio_loop: Any,
        data_home: tuple[Path, dict[str, Any]]) -> None:
    home, answers = data_home
    assert ext.hosting is not None and ext.hosting.ctx is not None
    assert ext.hosting.home == home and ext.hosting.upstream is None
    for path, wanted in answers.items():
        endpoint, _, query = path.partition("?")
        response = jp_asyncio_loop.run_until_complete(jp_fetch(
            "nbripple", "api", *endpoint.split("/"), params=dict(parse_qsl(query))))
        assert response.code == 200, path
        assert response.headers["Content-Type"].startswith("application/json")
        assert json.loads(response.body) == wanted, path
    health = jp_asyncio_loop.run_until_complete(jp_fetch("nbripple", "api", "health"))
    assert json.loads(health.body)["home"] == str(home)


def test_server_json_names_this_server_for_kernels(
        ext: NbrippleApp, data_home: tuple[Path, dict[str, Any]], jp_http_port: int,
        jp_base_url: str, api: Call) -> None:
    home, _ = data_home
    info = read_server_file(home)
    assert info is not None
    assert info.url == f"http://127.0.0.1:{jp_http_port}{jp_base_url}nbripple/api/"
    assert info.pid == os.getpid()
    assert stat.S_IMODE(server_file(home).stat().st_mode) == 0o600
    assert live_server(home) == info
    assert ext.hosting is not None and ext.hosting.ctx is not None
    assert info.token == ext.hosting.ctx.token and len(info.token) >= 32


def test_the_nbripple_token_reads_and_writes_without_xsrf(
        api: Call, data_home: tuple[Path, dict[str, Any]], jp_auth_header: dict[str, str]
        ) -> None:
    home, answers = data_home
    token = nbripple_token(home)
    artifacts = api("GET", "artifacts", headers=token)
    assert artifacts.code == 200 and body(artifacts) == answers["artifacts"]
    on = api("POST", "plans/toggle/activate", headers=token)
    assert on.code == 200 and body(on)["state"] == "active", on.body
    card = api("PUT", "versions/notes/1/card", headers=token,
               body=json.dumps({"markdown": "# Notes v2"}))
    assert card.code == 200 and [r["revision"] for r in body(card)["history"]] == [1, 2]
    plans = body(api("GET", "plans", headers=jp_auth_header))  # Jupyter's token
    assert {p["name"]: p["active"] for p in plans} == {"echo": True, "toggle": True}
    assert_api_error(api("GET", "artifacts", headers={"Authorization": "token nope"}), 403,
                     "Forbidden")
    assert_api_error(api("GET", "no/such/route", headers=token), 404, "NotFound")
    assert_api_error(api("DELETE", "artifacts", headers=token), 405, "MethodNotAllowed")
    assert_api_error(api("GET", "versions/sales/9", headers=token), 404, "VersionNotFound")
    assert_api_error(api("GET", "search?limit=many", headers=token), 400, "BadRequest")
    # Jupyter's own rules still apply: a foreign Host (DNS rebinding) is refused
    assert_api_error(api("GET", "artifacts", headers={**token, "Host": "evil.example"}), 403)


def test_a_browser_logged_in_to_jupyter_needs_xsrf_to_write(
        raw: Call, api: Call, jp_base_url: str, jp_auth_header: dict[str, str]) -> None:
    xsrf = SimpleCookie(raw("GET", f"{jp_base_url}login").headers["Set-Cookie"])["_xsrf"].value
    logged_in = SimpleCookie(api("GET", "health", headers=jp_auth_header).headers["Set-Cookie"])
    (name, morsel), = logged_in.items()
    login = f"{name}={morsel.coded_value}"
    browser = {"Cookie": login}
    assert api("GET", "artifacts", headers=browser).code == 200
    jupyter_token = jp_auth_header["Authorization"].split()[1]
    by_query = api("GET", f"search?text=sales&token={jupyter_token}")  # Jupyter's ?token=
    assert by_query.code == 200 and body(by_query)[0]["name"] == "sales", by_query.body
    refused = api("POST", "plans/toggle/activate", headers=browser)
    assert_api_error(refused, 403, "Forbidden")
    assert "XSRF" in body(refused)["message"]
    assert body(api("GET", "plans", headers=browser))[1]["active"] is False
    with_xsrf = {"Cookie": f"{login}; _xsrf={xsrf}", "X-XSRFToken": xsrf}
    cross_site = {**with_xsrf, "Origin": "http://evil.example"}
    assert_api_error(api("POST", "plans/toggle/activate", headers=cross_site), 403)
    assert_api_error(api("POST", "plans/toggle/activate",
                         headers={"Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf}), 401)
    accepted = api("POST", "plans/toggle/activate", headers=with_xsrf)
    assert accepted.code == 200 and body(accepted)["active"] is True, accepted.body


def test_stop_removes_server_json_and_lets_go_of_the_home(
        ext: NbrippleApp, jp_serverapp: ServerApp, jp_asyncio_loop: Any,
        data_home: tuple[Path, dict[str, Any]]) -> None:
    home, _ = data_home
    assert server_file(home).exists()
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.stop_all_extensions())
    assert not server_file(home).exists()
    # another process can open the DuckDB file (DuckDB refuses while a process holds it)
    opened = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).execute("
         "'select count(*) from information_schema.tables').fetchall()",
         str(home / "catalog.duckdb")], capture_output=True, text=True, timeout=60)
    assert opened.returncode == 0, opened.stderr
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.stop_all_extensions())


@pytest.mark.parametrize("nbripple_config", [{"watch": True}])
def test_watch_runs_the_homes_watcher_in_the_server(
        ext: NbrippleApp, api: Call, data_home: tuple[Path, dict[str, Any]],
        jp_serverapp: ServerApp, jp_asyncio_loop: Any) -> None:
    home, _ = data_home
    assert ext.hosting is not None and ext.hosting.ctx is not None
    ctx = ext.hosting.ctx
    state = body(api("GET", "watcher", headers=nbripple_token(home)))
    assert state["local"]["pid"] == os.getpid() and state["local"]["healthy"] is True
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.stop_all_extensions())
    assert ctx.watcher is None


def test_a_home_set_in_the_config_is_served(
        tmp_path: Path, jp_configurable_serverapp: Callable[..., ServerApp],
        jp_asyncio_loop: Any) -> None:
    home = nr.init_home(tmp_path / "configured")
    config = Config({"ServerApp": {"jpserver_extensions": {"nbripple": True,
                                                           "jupyter_server_terminals": False}},
                     "NbrippleApp": {"home": str(home)}})
    serverapp = jp_configurable_serverapp(config=config)
    jp_asyncio_loop.run_until_complete(serverapp.extension_manager.start_all_extensions())
    app = serverapp.extension_manager.extension_points["nbripple"].app
    assert app.hosting.home == home
    assert read_server_file(home) is not None


def test_the_url_for_kernels_is_loopback_unless_the_server_listens_elsewhere() -> None:
    cases = {("localhost", "/"): "http://127.0.0.1:8888/nbripple/api/",
             ("", "/"): "http://127.0.0.1:8888/nbripple/api/",
             ("0.0.0.0", "/user/ada/"): "http://127.0.0.1:8888/user/ada/nbripple/api/",
             ("::", "/"): "http://[::1]:8888/nbripple/api/",
             ("::1", "/"): "http://[::1]:8888/nbripple/api/",
             ("10.1.2.3", "/"): "http://10.1.2.3:8888/nbripple/api/"}
    for (ip, base_url), url in cases.items():
        assert kernel_url(ServerApp(ip=ip, port=8888, base_url=base_url)) == url
    assert kernel_url(ServerApp(sock="/tmp/jupyter.sock")) is None


# -- every verb of every route, on both hosts ----------------------------------------
def example_paths(pattern: str) -> list[str]:
    """Concrete paths a route's regex matches (each alternative of a choice)."""
    path = pattern.rstrip("$").replace("\\", "")
    if path.endswith(".*"):
        return [path[:-2] + "no/such/route"]
    path = re.sub(r"\(\?P<number>\[\^/\]\+\)", "1", path)
    path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "sales", path)
    path = re.sub(r"\(\?P<method>\[a-z_\]\+\)", "commit", path)  # catalog/<method>
    paths = [path]
    while any("(?P<" in p for p in paths):
        expanded = []
        for p in paths:
            match = re.search(r"\(\?P<\w+>([\w|]+)\)", p)
            if match is None:
                raise AssertionError(f"cannot make a path of {pattern}")
            expanded += [p[:match.start()] + alternative + p[match.end():]
                         for alternative in match.group(1).split("|")]
        paths = expanded
    return paths


def hosted_routes(serverapp: ServerApp) -> list[tuple[str, type[JupyterHosted]]]:
    """The routes the extension registered on the server's web application."""
    found = []
    for host_rule in serverapp.web_app.default_router.rules:
        for rule in getattr(host_rule.target, "rules", []):
            regex = getattr(rule.matcher, "regex", None)
            if (regex is not None and isinstance(rule.target, type)
                    and issubclass(rule.target, JupyterHosted)):
                found.append((regex.pattern, rule.target))
    return found


def verbs_of(handler: type) -> list[str]:
    unimplemented = tornado.web.RequestHandler._unimplemented_method
    return [v.upper() for v in IMPLEMENTED if getattr(handler, v) is not unimplemented]


def walk(fetch: Callable[[str, str, dict[str, str]], HTTPResponse],
         routes: list[tuple[str, type]]) -> int:
    """Every verb on every route's paths: with no credentials 401, with a wrong token
    403, both in the API's error shape. Returns the number of implemented verbs met."""
    implemented = 0
    for pattern, handler in routes:
        implemented += len(verbs_of(handler))
        for path in example_paths(pattern):
            for verb in VERBS:
                for headers, status in (({}, 401), ({"Authorization": "token wrong"}, 403)):
                    response = fetch(verb, path, headers)
                    assert response.code == status, (verb, path, headers, response.body)
                    if verb != "HEAD":
                        assert_api_error(response, status)
    return implemented


@pytest.mark.parametrize("allow_unauthenticated_access", [False, True])
def test_every_verb_of_every_route_of_both_hosts_needs_credentials(
        tmp_path: Path, ext: NbrippleApp, jp_serverapp: ServerApp, raw: Call,
        jp_base_url: str, jp_asyncio_loop: Any, http_server_client: Any) -> None:
    # the standalone host, in this process on its own port
    standalone = make_app(ServerContext(nr.Workspace(nr.init_home(tmp_path)), token="secret"))

    async def listen() -> tuple[HTTPServer, int]:
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(standalone)
        server.add_sockets(sockets)
        return server, sockets[0].getsockname()[1]

    server, port = jp_asyncio_loop.run_until_complete(listen())
    try:
        def at_standalone(verb: str, path: str, headers: dict[str, str]) -> HTTPResponse:
            return raw(verb, f"http://127.0.0.1:{port}{path}", headers=headers)

        alone = route_table(standalone)
        assert walk(at_standalone, alone) >= 13
    finally:
        server.stop()

    def at_jupyter(verb: str, path: str, headers: dict[str, str]) -> HTTPResponse:
        return raw(verb, path, headers=headers)

    hosted = hosted_routes(jp_serverapp)
    assert walk(at_jupyter, hosted) >= 13
    # the same endpoints, with the same verbs, and a JSON 404 for the rest
    prefix = f"{jp_base_url}nbripple/api/"
    assert [(p.replace(prefix, BASE_PATH, 1), verbs_of(h)) for p, h in hosted[:-1]] == \
        [(p, verbs_of(h)) for p, h in alone]
    assert all(issubclass(h, a) for (_, h), (_, a) in zip(hosted, alone, strict=False))
    assert hosted[-1][0] == prefix + ".*$"


# -- another process owns the home ---------------------------------------------------
@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Server, dict[str, Any]]]:
    """`nbripple serve` of a home of its own (no watcher)."""
    home = make_home(tmp_path_factory.mktemp("owned"))
    answers = expected(home)
    server = start_server(home, "--no-watch")
    try:
        yield server, answers
    finally:
        assert server.stop() == 0


class TestForwarding:
    @pytest.fixture
    def nbripple_config(self, owner: tuple[Server, dict[str, Any]]) -> dict[str, Any]:
        return {"home": str(owner[0].home)}

    def test_reads_are_the_owners(self, ext: NbrippleApp, owner: tuple[Server, dict[str, Any]],
                                  api: Call, jp_auth_header: dict[str, str]) -> None:
        server, answers = owner
        assert ext.hosting is not None and ext.hosting.ctx is None
        assert ext.hosting.upstream is not None
        assert ext.hosting.upstream.pid == server.process.pid
        for path, wanted in answers.items():
            response = api("GET", path, headers=jp_auth_header)
            assert response.code == 200, (path, response.body)
            assert body(response) == wanted, path
        # the owner's server.json stays the owner's
        info = read_server_file(server.home)
        assert info is not None and info.pid == server.process.pid

    def test_writes_errors_and_the_owners_token_pass_through(
            self, ext: NbrippleApp, owner: tuple[Server, dict[str, Any]], api: Call,
            jp_auth_header: dict[str, str]) -> None:
        server, _ = owner
        on = api("POST", "plans/toggle/activate", headers=jp_auth_header)
        assert on.code == 200 and body(on)["state"] == "active", on.body
        with server.client() as direct:
            assert {p["name"]: p["active"] for p in direct.get("plans").json()}["toggle"]
        off = api("POST", "plans/toggle/deactivate", body=b"{}",
                  headers={"Authorization": f"token {server.token}"})
        assert off.code == 200 and body(off)["active"] is False
        assert_api_error(api("GET", "versions/sales/9", headers=jp_auth_header), 404,
                         "VersionNotFound")
        jupyter_token = jp_auth_header["Authorization"].split()[1]  # stays here
        searched = api("GET", f"search?text=sales&partition=region=us&token={jupyter_token}")
        with server.client() as direct:
            wanted = direct.get("search", params={"text": "sales", "partition": "region=us"})
        assert searched.code == 200 and body(searched) == wanted.json()
        assert_api_error(api("GET", "no/such/route", headers=jp_auth_header), 404, "NotFound")
        assert_api_error(api("DELETE", "artifacts", headers=jp_auth_header), 405)
        assert_api_error(api("POST", "plans/toggle/activate", body=b"{bad",
                             headers=jp_auth_header), 400, "BadRequest")

    def test_nothing_reaches_the_owner_without_credentials(
            self, ext: NbrippleApp, raw: Call, jp_serverapp: ServerApp) -> None:
        def at_jupyter(verb: str, path: str, headers: dict[str, str]) -> HTTPResponse:
            return raw(verb, path, headers=headers)

        assert walk(at_jupyter, hosted_routes(jp_serverapp)) >= 13


@pytest.fixture
def mortal_owner(tmp_path: Path) -> Iterator[Server]:
    home = nr.init_home(tmp_path / "mortal")
    nr.use(home)
    nr.Artifact("notes").create_from("first")
    EmbeddedCatalog.close_all()
    server = start_server(home, "--no-watch")
    yield server
    server.stop()


class TestAnOwnerThatStops:
    @pytest.fixture
    def nbripple_config(self, mortal_owner: Server) -> dict[str, Any]:
        return {"home": str(mortal_owner.home)}

    def test_is_reported_then_found_again_once_restarted(
            self, ext: NbrippleApp, mortal_owner: Server, api: Call,
            jp_auth_header: dict[str, str]) -> None:
        assert api("GET", "artifacts", headers=jp_auth_header).code == 200
        assert mortal_owner.stop() == 0
        gone = api("GET", "artifacts", headers=jp_auth_header)
        assert_api_error(gone, 503, "ServerUnavailable")
        assert "restart it" in body(gone)["message"]
        again = start_server(mortal_owner.home, "--no-watch")
        try:
            answer = api("GET", "artifacts", headers=jp_auth_header)
            assert answer.code == 200 and body(answer)[0]["name"] == "notes"
        finally:
            assert again.stop() == 0


# -- a real `jupyter server` process, and the package --------------------------------
def test_a_jupyter_server_process_serves_its_home_to_other_processes(tmp_path: Path) -> None:
    home = nr.init_home(tmp_path / "project")
    nr.use(home)
    nr.Artifact("sales").create_from({"total": 1})
    EmbeddedCatalog.close_all()
    jupyter = {name: tmp_path / name for name in ("config", "data", "runtime", "root")}
    for path in jupyter.values():
        path.mkdir()
    (jupyter["config"] / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"jpserver_extensions": {"nbripple": True}, "ip": "127.0.0.1",
                      "port": 0, "open_browser": False, "allow_root": True,
                      "root_dir": str(jupyter["root"]), "base_url": "/jupyter/"},
        "IdentityProvider": {"token": "jupyter-token"}}))
    env = {**os.environ, "PYTHONPATH": str(SRC), "NBRIPPLE_HOME": str(home),
           "JUPYTER_CONFIG_DIR": str(jupyter["config"]),
           "JUPYTER_DATA_DIR": str(jupyter["data"]),
           "JUPYTER_RUNTIME_DIR": str(jupyter["runtime"])}
    log = (tmp_path / "jupyter.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "jupyter_server"], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        info = wait_for(lambda: (i := read_server_file(home)) is not None
                        and i.pid == process.pid and i, 60, "server.json of jupyter")
        runtime = json.loads(next(jupyter["runtime"].glob("jpserver-*.json")).read_text())
        assert info.url == f"http://127.0.0.1:{runtime['port']}/jupyter/nbripple/api/"
        # what a kernel or the CLI does: read server.json, then ask with its token
        kernel = subprocess.run(
            [sys.executable, "-c",
             "import json, urllib.request\n"
             "from nbripple.server.discovery import live_server\n"
             "from nbripple.config import find_home\n"
             "info = live_server(find_home())\n"
             "request = urllib.request.Request(info.url + 'artifacts',"
             " headers={'Authorization': 'token ' + info.token})\n"
             "print(json.load(urllib.request.urlopen(request))[0]['name'])\n"],
            env={**env, "NBRIPPLE_HOME": str(home)}, cwd=jupyter["root"],
            capture_output=True, text=True, timeout=60)
        assert kernel.stdout.strip() == "sales", kernel.stderr
        anonymous = httpx.get(info.url + "artifacts", timeout=20)
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "Unauthorized"
        # A kernel the Jupyter server starts creates a version; the sidebar's API lists it.
        jupyter_api = f"http://127.0.0.1:{runtime['port']}/jupyter/api/"
        auth = {"Authorization": "token jupyter-token"}
        started = httpx.post(jupyter_api + "kernels", headers=auth, timeout=60,
                             json={"name": "python3"})
        assert started.status_code == 201, started.text
        kernel_id = started.json()["id"]
        client = BlockingKernelClient(connection_file=str(
            wait_for(lambda: next(jupyter["runtime"].glob(f"kernel-{kernel_id}.json"), None),
                     60, "the kernel's connection file")))
        client.load_connection_file()
        # A client without a kernel manager judges the kernel dead after one missed
        # heartbeat second: on a loaded machine a starting kernel misses one.
        client.hb_channel.time_to_dead = 10.0
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            printed: list[str] = []
            reply = client.execute_interactive(
                "import nbripple as nr, nbripple.service as s\n"
                "v = nr.Artifact('from_kernel').create_from({'rows': 3}, card='# Made here')\n"
                "print(type(s.current().catalog).__name__, v.ref)", timeout=120,
                output_hook=lambda msg: printed.append(msg["content"].get("text", "")))
            assert reply["content"]["status"] == "ok", reply["content"]
            assert "".join(printed).split() == ["ServedCatalog", "from_kernel@1"]
        finally:
            client.stop_channels()
        listed = httpx.get(info.url + "search", params={"text": "from_kernel"},
                           headers={"Authorization": f"token {info.token}"}, timeout=20)
        assert [row["name"] + "@" + str(row["version"]) for row in listed.json()] == \
            ["from_kernel@1"]
        browser = httpx.get(info.url + "versions/from_kernel/1/card", headers=auth, timeout=20)
        assert browser.status_code == 200 and "Made here" in browser.json()["html"]
        httpx.delete(jupyter_api + f"kernels/{kernel_id}", headers=auth, timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
        log.close()
    assert returncode == 0, (tmp_path / "jupyter.log").read_text()[-3000:]
    assert not server_file(home).exists()


def test_the_package_names_its_server_extension_and_stays_cheap_to_import() -> None:
    assert nr._jupyter_server_extension_points() == [
        {"module": "nbripple.server.extension", "app": NbrippleApp}]
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, nbripple; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] in ('jupyter_server', 'tornado')))"],
        env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True,
        timeout=60)
    assert imported.stdout.strip() == "[]", imported.stderr


def test_the_wheel_enables_the_extension_in_jupyter(tmp_path: Path) -> None:
    """A wheel built from this tree, installed in a fresh venv (with jupyter_server, not
    a dependency of nbripple): Jupyter lists the extension enabled and valid."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv is not None, "uv is installed with the project (make install); install it"
    root = Path(__file__).resolve().parents[1]
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV"))}

    def run(*command: str | Path) -> str:
        done = subprocess.run([str(c) for c in command], cwd=tmp_path, env=clean,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout + done.stderr

    run(uv, "build", "--wheel", "--out-dir", tmp_path / "dist", root)
    wheel, = (tmp_path / "dist").glob("nbripple-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        config = [n for n in archive.namelist() if n.endswith("/nbripple.json")]
        assert config == [f"nbripple-{nr.__version__}.data/data/etc/jupyter/"
                          "jupyter_server_config.d/nbripple.json"]
        assert json.loads(archive.read(config[0])) == {
            "ServerApp": {"jpserver_extensions": {"nbripple": True}}}
    venv = tmp_path / "venv"
    run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    run(uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel,
        f"jupyter_server=={jupyter_server.__version__}")
    clean["JUPYTER_CONFIG_DIR"] = str(tmp_path / "no-user-config")
    listed = re.sub(r"\x1b\[[0-9;]*m", "", run(venv / "bin" / "jupyter", "server",
                                                "extension", "list"))
    assert re.search(r"^ +nbripple enabled$", listed, re.M), listed
    assert re.search(rf"^ +nbripple {re.escape(nr.__version__)} OK$", listed, re.M), listed
