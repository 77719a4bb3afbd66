"""A real git server over HTTP for tests: git's own `git http-backend` (smart HTTP) behind
a small WSGI server that demands HTTP basic authentication, on 127.0.0.1."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

_BACKEND = "/usr/lib/git-core/git-http-backend"
_PASS = ("CONTENT_TYPE", "CONTENT_LENGTH", "QUERY_STRING", "REQUEST_METHOD", "PATH_INFO")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class GitHttp:
    root: Path  # holds <name>.git bare repositories
    port: int
    user: str
    password: str
    requests: list[str]  # "METHOD PATH user" of every request, for assertions

    def url(self, name: str, *, credentials: bool = False) -> str:
        auth = f"{self.user}:{self.password}@" if credentials else ""
        return f"http://{auth}127.0.0.1:{self.port}/{name}.git"


def _app(server: GitHttp) -> Any:
    expected = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()

    def app(environ: dict[str, Any], start: Any) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION")
        server.requests.append(
            f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {'auth' if given else '-'}"
        )
        if given != expected:
            start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b"authentication required\n"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        env = {k: str(environ[k]) for k in _PASS if environ.get(k)}
        env.update(
            GIT_PROJECT_ROOT=str(server.root),
            GIT_HTTP_EXPORT_ALL="1",
            REMOTE_USER=server.user,
            REMOTE_ADDR="127.0.0.1",
        )
        for header in ("HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
            if environ.get(header):
                env[header] = str(environ[header])
        done = subprocess.run([_BACKEND], input=body, env=env, capture_output=True, check=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(": ")
            if key.lower() == "status":
                status = value
            elif key:
                headers.append((key, value))
        start(status, headers)
        return [payload]

    return app


@contextmanager
def git_http(root: Path, user: str, password: str) -> Iterator[GitHttp]:
    root.mkdir(parents=True, exist_ok=True)
    server = GitHttp(root, 0, user, password, [])
    httpd = make_server("127.0.0.1", 0, _app(server), server_class=_Server, handler_class=_Quiet)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def publish(repo: Path, server: GitHttp, name: str) -> None:
    """A bare copy of `repo` that `server` serves as `<name>.git`."""
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(repo), str(server.root / f"{name}.git")],
        check=True,
    )
