"""Running ``sso-monitor`` as a user's terminal sees it, and what that may never show.

``run_cli(argv)`` calls ``sso_monitor.cli.entry.main`` in this process with the streams a
real process has: standard output encodes strictly as UTF-8 (as it does under a
UTF-8 locale: a lone surrogate from a non-UTF-8 argv byte fails there), standard
error with ``backslashreplace``, standard input is the bytes given (nothing by
default), and the log goes to standard error the way ``logging.basicConfig`` in
``cli._main`` sends it: WARNING and up, DEBUG with ``-v``. Tracebacks in log records
are marked, so that ``assert_clean`` can tell the documented ``-v`` debug log (which
may hold one) from a traceback a user is shown.

``loopback_only`` (a context manager) refuses every name resolution and connection
that is not to the loopback address and records the attempt: no input may make a
test reach the network outside the sandbox.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import re
import socket
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import sso_monitor.cli.entry as cli

EXIT_CODES = {0, 1, 2, 3}  # docs/decisions.md, "Exit codes"; 130 only for an interrupt
MIN_RUN = 8  # redact.MIN_RUN: no run of this many characters of a secret may be shown

_LOGGED = "\u27eadebug-log\u27eb"  # marks each line of a traceback that came out through a log record
_LOG_HEADER = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.\-]+: ")
_FRAME = re.compile(r'^[ \t]*File "[^"\n]*", line \d+', re.M)
# The sandbox runs in this process too; its own records are not the CLI's output.
_NOT_THE_CLI = ("sso_sandbox", "mail.log", "aiosmtpd")


@dataclass
class Run:
    argv: list[str]
    code: int
    out: str
    err: str
    verbose: bool = False
    stdin: bytes = b""
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # short enough to read in a failing example
        return f"Run(argv={[a[:120] for a in self.argv]!r}, code={self.code}, err={self.err[-600:]!r}, out={self.out[-300:]!r})"


class _MarkedFormatter(logging.Formatter):
    def formatException(self, ei) -> str:
        return "\n".join(_LOGGED + line for line in super().formatException(ei).split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(_LOGGED + line for line in stack_info.split("\n"))

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_text  # the redaction factory's scrubbed text, when it made one
        if saved:
            record.exc_text = "\n".join(_LOGGED + line for line in saved.split("\n"))
        try:
            text = super().format(record)
        finally:
            record.exc_text = saved  # other handlers (pytest's) see the record unchanged
        if record.exc_info is None and "Traceback (most recent call last)" in text:
            text = "\n".join(_LOGGED + line for line in text.split("\n"))
        return text


class _CliRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_NOT_THE_CLI)


def run_cli(argv: Sequence[str], *, stdin: bytes | str = b"") -> Run:
    """``main(argv)`` with a terminal's streams; SystemExit becomes the exit code a shell sees."""
    data = stdin.encode("utf-8", "surrogateescape") if isinstance(stdin, str) else stdin
    out_raw, err_raw = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_raw, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(err_raw, encoding="utf-8", errors="backslashreplace", write_through=True)
    source = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")
    handler = logging.StreamHandler(err)
    handler.setFormatter(_MarkedFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_CliRecords())
    handler.setLevel(logging.WARNING)
    seen = {"verbose": False}
    original = cli._main

    def spy(args):  # _main's first act is logging.basicConfig: the level the user chose
        seen["verbose"] = bool(args.verbose)
        handler.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
        return original(args)

    saved = sys.stdin, sys.stdout, sys.stderr
    root = logging.getLogger()
    root.addHandler(handler)
    cli._main = spy
    sys.stdin, sys.stdout, sys.stderr = source, out, err
    try:
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # what the interpreter makes of it
            code = exc.code
            if code is None:
                code = 0
            elif not isinstance(code, int):
                err.write(f"{code}\n")
                code = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        cli._main = original
        root.removeHandler(handler)
    out.flush()
    err.flush()
    return Run(list(argv), code, out_raw.getvalue().decode("utf-8"), err_raw.getvalue().decode("utf-8"), seen["verbose"], data)


# ---------------------------------------------------------------- what may never be shown


def tracebacks(text: str, *, verbose: bool) -> list[str]:
    """The lines of ``text`` that belong to a traceback a user is shown. With ``-v`` a
    traceback inside a log record is the documented debug log; without it, none is."""
    lines = text.split("\n")
    if verbose:
        lines = [line for line in lines if not line.startswith(_LOGGED)]
    shown = "\n".join(line.removeprefix(_LOGGED) for line in lines)
    found = [line for line in shown.split("\n") if "Traceback (most recent call last)" in line or line.startswith("Exception ignored in")]
    found += _FRAME.findall(shown)
    return found


def issued(world) -> list[str]:
    """What of each secret the sandbox issued must never be shown: the value, or for a
    URL that is a secret (a webhook), its signature (redact's own rule: the scheme and
    host are in every other URL too)."""
    from sso_monitor import redact

    parts = getattr(redact, "secret_parts", None) or redact._secret_parts  # (its name before it was public)
    return [part for secret in world.issued_secrets for part in parts(secret)]


def secret_runs(secrets: Iterable[str]) -> set[str]:
    return {secret[i : i + MIN_RUN] for secret in secrets if secret and len(secret) >= MIN_RUN for i in range(len(secret) - MIN_RUN + 1)}


def leaked(text: str, runs: set[str]) -> bool:
    return any(text[i : i + MIN_RUN] in runs for i in range(len(text) - MIN_RUN + 1))


GENERIC_FAILURE = "the command failed ("  # main()'s net for what nothing else caught


def assert_clean(run: Run, *, secrets: Iterable[str] = ()) -> None:
    """The rule of issue "Safety and hardening", item 6, for one run."""
    assert run.code in EXIT_CODES, f"exit code {run.code}: {run!r}"
    for name, text in (("stdout", run.out), ("stderr", run.err)):
        shown = tracebacks(text, verbose=run.verbose)
        assert not shown, f"a traceback on {name}: {shown[:3]} in {run!r}"
    if run.code == 3:
        assert run.err.strip(), f"exit 3 without a word on stderr: {run!r}"
    # Every failure an input can cause has its own clear message; the catch-all in
    # main() is for the monitor's own bugs.
    assert GENERIC_FAILURE not in run.err, f"an input reached main()'s catch-all: {run!r}"
    runs = secret_runs(secrets)
    if runs:
        assert not leaked(run.out, runs), f"a secret's fragment on stdout: {run.argv!r}"
        assert not leaked(run.err, runs), f"a secret's fragment on stderr: {run.argv!r}"


def assert_subprocess_clean(code: int, out: str, err: str, *, verbose: bool, secrets: Iterable[str] = ()) -> None:
    """The same rule for a real process (its log is formatted by logging.basicConfig):
    with -v, a traceback is allowed only inside a log record (the debug log)."""
    assert code in EXIT_CODES, f"exit code {code}: {err[-2000:]!r}"
    assert not tracebacks(out, verbose=False), out[-2000:]
    if not verbose:
        assert not tracebacks(err, verbose=False), err[-3000:]
    else:
        lines = err.splitlines()
        for index, line in enumerate(lines):
            if "Traceback (most recent call last)" not in line:
                continue
            # walk back over the traceback (and any chained one) to the log record it belongs to
            back = index - 1
            while back >= 0 and not _LOG_HEADER.match(lines[back]):
                assert not lines[back].startswith(("sso-monitor:", "usage:")), f"a traceback outside the debug log: {err[-3000:]!r}"
                back -= 1
            assert back >= 0, f"a traceback outside any log record: {err[-3000:]!r}"
    if code == 3:
        assert err.strip(), "exit 3 without a word on stderr"
    runs = secret_runs(secrets)
    assert not leaked(out, runs) and not leaked(err, runs), "a secret's fragment in the output"


# ---------------------------------------------------------------- no network but the loopback


def _loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").split("%")[0].lower()
    if name in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuse (and record) every resolution of, or connection to, anything but the
    loopback address while the block runs."""
    attempts: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _loopback(host):
            attempts.append(f"resolve {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"the test allows only loopback, not {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def allowed(sock: socket.socket, address: object) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        host = address[0] if isinstance(address, tuple) else address
        if _loopback(host):
            return True
        attempts.append(f"connect {address!r}")
        return False

    def connect(self, address):
        if not allowed(self, address):
            raise ConnectionRefusedError(f"the test allows only loopback, not {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not allowed(self, address):
            return 111  # ECONNREFUSED
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.getaddrinfo = real_getaddrinfo  # type: ignore[assignment]
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex  # type: ignore[method-assign]
