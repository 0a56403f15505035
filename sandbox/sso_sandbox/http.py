"""A small threaded HTTPS server that the sandbox services share.

Each service (Graph, Entra, Key Vault, SmartTrace, Teams) is a ``Service``
subclass: a table of routes plus the service's own error body. The server
applies the fault plan around every request, records it in the world, and
runs the handler under the world lock so that concurrent clients see
consistent state. Latency and timeouts are served outside the lock.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sso_sandbox.faults import FaultPlan, FaultRule
from sso_sandbox.world import RequestRecord, World

log = logging.getLogger("sso_sandbox")

MAX_BODY = 4 * 1024 * 1024


class HttpError(Exception):
    """Raised by a handler to answer with the service's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str  # percent-decoded, without the query
    raw_path: str  # as sent, with the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    host: str  # Host header without the port, lower-case
    service: str = ""
    caller: str | None = None  # set by authentication: the client's appId
    claims: dict[str, Any] = field(default_factory=dict)

    def q(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if not self.body:
            raise HttpError(400, "BadRequest", "The request body is empty; a JSON body is required.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, "BadRequest", f"The request body is not valid JSON: {exc.__class__.__name__}.") from None

    def form(self) -> dict[str, str]:
        try:
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HttpError(400, "invalid_request", "The request body must be form-encoded UTF-8.") from None
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "application/json; charset=utf-8"}
        merged.update(headers or {})
        return cls(status, json.dumps(payload).encode("utf-8"), merged)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8", headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": content_type}
        merged.update(headers or {})
        return cls(status, text.encode("utf-8"), merged)

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


class _Drop:
    """Close the connection without answering."""


DROP = _Drop()

Handler = Callable[..., Response]


class Service:
    """Base for a sandbox service: routes, error body, fault application."""

    name = "service"

    def __init__(self, world: World, faults: FaultPlan) -> None:
        self.world = world
        self.faults = faults
        self.base_url = ""  # set when the server starts
        self.stopping = threading.Event()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    # ---- routing

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(pattern + r"\Z", re.IGNORECASE), handler))

    def dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            return handler(request, **match.groupdict())
        if allowed:
            raise self.not_allowed(request, sorted(set(allowed)))
        raise self.no_route(request)

    def not_allowed(self, request: Request, allowed: list[str]) -> HttpError:
        """The error for a path served only with other methods (a service answers in its own words)."""
        return HttpError(405, "MethodNotAllowed", f"The method {request.method} is not allowed on {request.path}.")

    def no_route(self, request: Request) -> HttpError:
        """The error for a path no route serves."""
        return HttpError(404, "NotFound", f"No such route: {request.method} {request.path}")

    # ---- the service's own wire shapes; subclasses override

    def error_response(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
        return Response.json(status, {"error": {"code": code, "message": message}}, headers)

    def throttle_response(self, retry_after: float) -> Response:
        return self.error_response(429, "TooManyRequests", "Please retry again later.", {"Retry-After": _retry_after(retry_after)})

    def fault_response(self, rule: FaultRule) -> Response:
        if rule.fault == "throttle":
            return self.throttle_response(rule.retry_after)
        code = rule.code or _default_code(rule.status)
        message = rule.message or f"Injected fault: {rule.status} {code}."
        return self.error_response(rule.status, code, message, {"Location": rule.location} if rule.location else None)

    # ---- one request, with the fault plan applied

    def process(self, request: Request) -> Response | _Drop:
        if self.faults.crashed is not None:
            return DROP
        rules = self.faults.select(self.name, request.method, request.path)
        for rule in rules:
            if rule.fault == "latency":
                self.stopping.wait(rule.latency_ms / 1000.0)
        for rule in rules:
            if rule.when != "before" and rule.fault in ("drop", "timeout", "crash"):
                continue
            outcome = self._pre_fault(rule, request)
            if outcome is not None:
                return outcome
        response = self.handle(request)
        for rule in rules:
            if rule.when == "after" and rule.fault in ("drop", "timeout", "crash"):
                return self._fail_connection(rule, request)
        return response

    def handle(self, request: Request) -> Response:
        try:
            with self.world.lock:
                return self.dispatch(request)
        except HttpError as exc:
            return self.error_response(exc.status, exc.code, exc.message, exc.headers)

    def _pre_fault(self, rule: FaultRule, request: Request) -> Response | _Drop | None:
        if rule.fault in ("status", "throttle"):
            return self.fault_response(rule)
        if rule.fault in ("drop", "timeout", "crash"):
            return self._fail_connection(rule, request)
        return None

    def _fail_connection(self, rule: FaultRule, request: Request) -> _Drop:
        if rule.fault == "crash":
            self.faults.mark_crashed(self.name, request.method, request.path, rule.when)
        elif rule.fault == "timeout":
            self.stopping.wait(rule.seconds)
        return DROP


def _retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


_DEFAULT_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def _default_code(status: int) -> str:
    return _DEFAULT_CODES.get(status, "Error")


# ---------------------------------------------------------------- the server


_SIGNED_QUERY = re.compile(r"((?:^|[?&])(?:sig|code|sp|sv)=)[^&\s\"]*")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end after this
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:
        # A request line may carry a signature in its query (a Teams webhook's sig=): masked.
        log.debug("%s %s", self.server.service.name, _SIGNED_QUERY.sub(r"\1***", format % args))

    def _serve(self) -> None:
        service = self.server.service
        try:
            body = self._read_body()
        except ValueError as exc:
            self._write(service.error_response(400, "BadRequest", str(exc)))
            return
        split = urlsplit(self.path)
        headers = {key.lower(): value for key, value in self.headers.items()}
        host = headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower() if headers.get("host") else ""
        request = Request(
            method=self.command.upper(),
            path=unquote(split.path),
            raw_path=self.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=body,
            host=host,
            service=service.name,
        )
        outcome = service.process(request)
        status = 0 if isinstance(outcome, _Drop) else outcome.status
        service.world.record(RequestRecord(service.name, request.method, request.path, status, service.world.now(), request.caller))
        if isinstance(outcome, _Drop):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(outcome, head_only=request.method == "HEAD")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("The request body is too large.")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("The request body is too large.")
        return self.rfile.read(length) if length else b""

    def _write(self, response: Response, head_only: bool = False) -> None:
        self.send_response(response.status)
        headers = dict(response.headers)
        headers.setdefault("request-id", str(uuid.uuid4()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if not head_only and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class SandboxServer(ThreadingHTTPServer):
    """One HTTPS listener on 127.0.0.1 with an ephemeral port, serving one Service."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, service: Service, ssl_context: ssl.SSLContext, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.ssl_context = ssl_context
        super().__init__((host, port), _RequestHandler)
        self.port = self.server_address[1]
        self._thread: threading.Thread | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow
        # or broken client never blocks the accept loop.
        try:
            request.settimeout(60)
            # The handler writes the head and the body separately; with Nagle's algorithm the
            # body would wait for the client's delayed ACK of the head (40 ms a response).
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("sandbox %s: connection error from %s", self.service.name, client_address, exc_info=True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"sandbox-{self.service.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.service.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
