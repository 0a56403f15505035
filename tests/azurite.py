"""Azurite, the Azure Storage emulator, for tests that need blobs, queues or tables.

A pytest plugin (registered in conftest.py). The ``azurite`` fixture starts
one Azurite per test session from the npm package in ./node_modules (the
Makefile's ``make test`` installs it from package-lock.json): in memory, on
ports the system picks (``--blobPort 0``; Azurite prints the ones it got),
telemetry off. Tests isolate themselves by container, queue or table name.

Without the binary the tests that use it are skipped locally with the command
that installs it, and fail under CI (``CI`` set), where a skip would hide a
missing install step.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT = 30.0
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Azurite:
    blob_port: int
    queue_port: int
    table_port: int

    def endpoint(self, service: str) -> str:
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"http://127.0.0.1:{port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        # Not "UseDevelopmentStorage=true": that one means the default ports.
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint('blob')};QueueEndpoint={self.endpoint('queue')};TableEndpoint={self.endpoint('table')};"
        )


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it (make test runs npm ci)", pytrace=False)
    pytest.skip(f"{reason}; run `make test` or `npm ci` in {ROOT}")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class AzuriteProcess:
    """Azurite as a child process: ``start`` waits until its three services answer."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.output: list[str] = []
        self._ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Azurite:
        """Raise FileNotFoundError if it cannot be run, RuntimeError if it does not come up."""
        env = {k: v for k, v in os.environ.items() if k != "AZURITE_ACCOUNTS"}  # keep devstoreaccount1
        args = [str(BINARY), "--inMemoryPersistence", "--skipApiVersionCheck", "--silent", "--loose", "--disableTelemetry"]
        for service in ("blob", "queue", "table"):
            args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", "0"]
        self._process = subprocess.Popen(args, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, name="azurite-output", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        self._ready.wait(START_TIMEOUT)
        ports = self._ports
        while len(ports) == 3 and self._process.poll() is None and time.monotonic() < deadline:
            if all(_answers(port) for port in ports.values()):
                return Azurite(ports["blob"], ports["queue"], ports["table"])
            time.sleep(0.05)
        self.stop()
        tail = "\n".join(self.output[-20:])
        raise RuntimeError(f"Azurite did not start within {START_TIMEOUT:.0f} s (exit code {self._process.returncode}):\n{tail}")

    def _read(self) -> None:
        # Drains the pipe for Azurite's whole life, so it never blocks on a full one.
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self.output.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                self._ports[match.group(1).lower()] = int(match.group(2))
                if len(self._ports) == 3:
                    self._ready.set()
        self._ready.set()  # it exited

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    if not BINARY.exists():
        _missing(f"Azurite is not installed ({BINARY.relative_to(ROOT)} is missing)")
    running = AzuriteProcess(tmp_path_factory.mktemp("azurite"))
    try:
        service = running.start()
    except FileNotFoundError as exc:  # node itself is missing
        _missing(f"Azurite cannot start: {exc}")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield service
    finally:
        running.stop()


@pytest.fixture(scope="session")
def azurite_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


def forget_alert_state(connection_string: str) -> None:
    """Delete the alert store's table (the monitor creates it again on its first write),
    so a test does not see what earlier tests in the session said or snoozed."""
    from azure.data.tables import TableServiceClient

    from sso_monitor.adapters.storage.alert_store import DEFAULT_TABLE

    with TableServiceClient.from_connection_string(connection_string) as tables:
        tables.delete_table(DEFAULT_TABLE)  # a missing table is fine
