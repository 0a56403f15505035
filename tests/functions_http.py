"""The Functions host's HTTP front on this machine, for tests a browser drives.

``FunctionsHttpHost`` serves function_app's HTTP-triggered functions at
``/api/<route>`` the way the host does (Microsoft.Azure.WebJobs.Extensions.Http): the
route template's ``{name}`` segments become route parameters, the query becomes
``params``, a method the trigger does not list is a 404 (the host matches routes by
method), and a route whose ``authLevel`` is ``function`` needs the function key in
the ``code`` query parameter or the ``x-functions-key`` header, else a 401 with an
empty body ("Authorization level", Azure Functions HTTP trigger documentation). The
response's ``mimetype`` and ``charset`` become its Content-Type.

It runs in the test's process, on a thread, with the app settings the test set:
the functions see the same environment as when a test calls them directly.
"""

from __future__ import annotations

import asyncio
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from tests.app_functions import functions_by_name

ROUTE_PREFIX = "api"


class _Route:
    def __init__(self, function: Any) -> None:
        trigger = function.get_trigger()
        self.name = function.get_function_name()
        self.call = function.get_user_function()
        self.methods = {str(getattr(m, "value", m)).upper() for m in trigger.methods}
        self.anonymous = str(getattr(trigger.auth_level, "name", trigger.auth_level)).upper() == "ANONYMOUS"
        pattern = re.sub(r"\{(\w+)(?::[^}]*)?\}", r"(?P<\1>[^/]+)", trigger.route)
        self.pattern = re.compile(rf"/{ROUTE_PREFIX}/{pattern}\Z", re.IGNORECASE)


class FunctionsHttpHost:
    """``with FunctionsHttpHost() as host: host.url("status/view")``"""

    def __init__(self, function_key: str = "sandbox-function-key", hostname: str = "localhost") -> None:
        self.function_key = function_key
        self.hostname = hostname  # a single-page app's http redirect URI must be localhost
        self.routes = [_Route(f) for f in functions_by_name().values() if type(f.get_trigger()).__name__ == "HttpTrigger"]
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status)
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                status, headers, body = host.handle(self.command, self.path, dict(self.headers.items()), self._body())
                host.calls.append((self.command, urlsplit(self.path).path, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="functions-http", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.hostname}:{self._server.server_address[1]}"

    def url(self, route: str) -> str:
        return f"{self.base_url}/{ROUTE_PREFIX}/{route}"

    def __enter__(self) -> FunctionsHttpHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        for route in self.routes:
            match = route.pattern.match(parts.path)
            if match is None or method.upper() not in route.methods | ({"HEAD"} if "GET" in route.methods else set()):
                continue
            if not route.anonymous and self.function_key not in (query.get("code"), _header(headers, "x-functions-key")):
                return 401, {}, b""
            request = func.HttpRequest(
                method=method.upper(),
                url=f"{self.base_url}{target}",
                headers=headers,
                params=query,
                route_params=match.groupdict(),
                body=body,
            )
            result = route.call(request)
            response: func.HttpResponse = asyncio.run(result) if asyncio.iscoroutine(result) else result
            answer = {key: value for key, value in response.headers.items() if key.lower() != "content-length"}
            if response.mimetype and not any(key.lower() == "content-type" for key in answer):
                answer["Content-Type"] = f"{response.mimetype}; charset={response.charset}" if response.charset else response.mimetype
            return response.status_code, answer, response.get_body()
        return 404, {}, b""


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)
