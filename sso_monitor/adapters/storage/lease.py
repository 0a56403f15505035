"""The rotation's lease: one rotation per app at a time (rotation_ports.Lease).

``BlobLease`` is the Function App's: an Azure Storage blob lease on one blob
per key, in the storage account the Functions host already has. It excludes
the timer, the HTTP admin API and every scaled-out instance alike.
``LocalLease`` is the CLI's: an in-process set plus an advisory file lock, so
two runs on one machine exclude each other. docs/decisions.md says why.

Both are non-blocking: a key held elsewhere raises ``LeaseUnavailable`` at
once; the caller reports "another rotation is running" and moves on.

A blob lease lasts 15 to 60 seconds unless renewed. While the block runs a
background task renews it every third of that; if the holder dies, the lease
expires by itself and the next run proceeds. If renewal fails for good (the
lease was broken, or no renewal succeeded within the lease's duration), the
block is *not* cancelled: cancelling an arbitrary await could interrupt a
Graph or Key Vault write between request and answer. The ``HeldLease`` the
block receives says so instead (``lost``), and ``ensure()`` raises
``LeaseUnavailable``, for the protocol to call before each step with side
effects. Every step checks before it acts, so a second run that got the
lease in between converges with this one.

Why the synchronous BlobClient in a thread, and not the aio one: the same
reasons as Key Vault's (docs/decisions.md). ``credential_for`` builds sync
credentials, aiohttp is not a dependency we declare, and a lease costs one
short request to acquire, one to release and one every 20 seconds to renew:
a small pool of threads is plenty.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient

from sso_monitor.adapters.errors import azure_error
from sso_monitor.adapters.errors import error_code as _error_code
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.errors import LeaseUnavailable

try:  # POSIX only; elsewhere LocalLease excludes within one process.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SERVICE = "storage"
DEFAULT_CONTAINER = "sso-monitor-leases"
DEFAULT_TTL = timedelta(seconds=60)
# Azure's bounds for a finite blob lease, in seconds.
MIN_LEASE_SECONDS = 15
MAX_LEASE_SECONDS = 60
# Storage error codes that mean our lease is gone (broken, expired and taken,
# or released by someone who knew its id).
_LEASE_GONE = {"LeaseIdMismatchWithLeaseOperation", "LeaseNotPresentWithLeaseOperation", "LeaseLost", "LeaseIsBrokenAndCannotBeRenewed"}


class HeldLease:
    """What the block of ``hold`` receives: the key, and whether the lease still holds.

    ``lost`` turns true when the service said the lease is gone, or when no
    renewal has succeeded for the lease's whole duration (it may have expired
    and another run may hold it now)."""

    def __init__(self, key: str, duration: float | None = None, renew: Callable[[HeldLease], Awaitable[None]] | None = None) -> None:
        self.key = key
        self.duration = duration  # seconds; None: held until released (LocalLease)
        self.renewals = 0
        self.renewed_at = time.monotonic()
        self._lost_reason: str | None = None
        self._renew = renew  # asks the service now; None: nothing to ask (LocalLease)

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None

    @property
    def lost_reason(self) -> str | None:
        if self._lost_reason is None and self.duration is not None and time.monotonic() - self.renewed_at >= self.duration:
            return f"no renewal succeeded for {self.duration:.0f} s"
        return self._lost_reason

    def lose(self, reason: str) -> None:
        self._lost_reason = self._lost_reason or reason

    def ensure(self) -> None:
        """Raise LeaseUnavailable if the lease is known to be lost (no request made)."""
        reason = self.lost_reason
        if reason is not None:
            raise LeaseUnavailable(f"lease {self.key} was lost ({reason}); another run may hold it")

    async def confirm(self) -> None:
        """Immediately before a write: renew with the service now, so that a lease broken
        since the last background renewal stops the write instead of being noticed up to
        a third of its duration later. Raises LeaseUnavailable when it is not ours, or
        when the service cannot say so right now (no write on a doubt)."""
        self.ensure()
        if self._renew is not None:
            await self._renew(self)


def lease_seconds(ttl: timedelta) -> int:
    """The blob lease duration for a requested ttl, within Azure's 15..60 s.

    A longer ttl needs no longer lease: renewal keeps it held as long as the
    holder lives, and a short lease lets the next run start soon after a crash."""
    return max(MIN_LEASE_SECONDS, min(MAX_LEASE_SECONDS, round(ttl.total_seconds())))


# ---------------------------------------------------------------- blob lease


class BlobLease:
    """Lease on Azure Blob Storage: blob ``<key>`` in one container, created when missing.

    ``renew_every`` overrides the renewal interval (default: a third of the
    lease's duration); tests shorten it. ``concurrency`` sizes the thread pool
    the SDK's calls run in.
    """

    def __init__(self, container: ContainerClient, *, renew_every: float | None = None, concurrency: int = 4) -> None:
        self._container = container
        self._renew_every = renew_every
        self._pool = BlockingPool(concurrency, "lease")

    @asynccontextmanager
    async def hold(self, key: str, *, ttl: timedelta = DEFAULT_TTL) -> AsyncIterator[HeldLease]:
        duration = lease_seconds(ttl)
        blob = self._container.get_blob_client(_blob_name(key))
        client = BlobLeaseClient(blob)
        started = time.monotonic()  # the lease runs from no later than this
        await self._acquire(blob, client, key, duration)
        held = HeldLease(key, duration, renew=lambda h: self._renew_now(h, client))
        held.renewed_at = started
        log.info("lease %s: acquired for %d s", key, duration)
        renewer = asyncio.create_task(self._keep(held, client, self._renew_every or duration / 3), name=f"lease-renew-{key}")
        try:
            yield held
        finally:
            # The renewal may be in its thread right now; the service orders it
            # against the release, and a renewal after the release fails harmlessly.
            renewer.cancel()
            if held.lost:
                log.warning("lease %s: not released, it was lost (%s)", key, held.lost_reason)
            else:
                await self._release(client, key, duration)

    async def _acquire(self, blob: BlobClient, client: BlobLeaseClient, key: str, duration: int) -> None:
        # If the caller is cancelled while an acquire is in its thread, that lease
        # may be taken with no one to release it: it expires after ``duration``.
        try:
            await self._pool.run(_acquire_or_refuse, client, key, duration)
            return
        except ResourceNotFoundError:
            pass  # the container or the blob does not exist yet: create them, then try once more
        except AzureError as exc:
            raise azure_error(SERVICE, f"lease {key}: acquire", exc, "storage") from exc
        try:
            await self._pool.run(_create_blob, self._container, blob)
            await self._pool.run(_acquire_or_refuse, client, key, duration)
        except AzureError as exc:
            raise azure_error(SERVICE, f"lease {key}: acquire", exc, "storage") from exc

    async def _keep(self, held: HeldLease, client: BlobLeaseClient, every: float) -> None:
        """Renew until cancelled or lost. A failed renewal is retried at the next tick;
        the lease is lost when the service says so or when its duration passes without one."""
        while True:
            await asyncio.sleep(every)
            started = time.monotonic()
            try:
                await self._pool.run(client.renew)
            except HttpResponseError as exc:
                code = _error_code(exc)
                if code in _LEASE_GONE or (exc.status_code == 409 and code is None):
                    held.lose(f"renewal refused: {code or exc.status_code}")
                    log.error("lease %s: lost, renewal refused (%s); the run must stop before its next step", held.key, code or exc.status_code)
                    return
                log.warning("lease %s: renewal failed (%s %s); retrying", held.key, exc.status_code, code)
            except AzureError as exc:
                log.warning("lease %s: renewal failed (%s); retrying", held.key, type(exc).__name__)
            else:
                held.renewed_at = started
                held.renewals += 1
                continue
            if held.lost:
                log.error("lease %s: lost (%s); the run must stop before its next step", held.key, held.lost_reason)
                return

    async def _renew_now(self, held: HeldLease, client: BlobLeaseClient) -> None:
        started = time.monotonic()
        try:
            await self._pool.run(client.renew)
        except HttpResponseError as exc:
            code = _error_code(exc)
            if code in _LEASE_GONE or (exc.status_code == 409 and code is None):
                held.lose(f"renewal refused: {code or exc.status_code}")
                raise LeaseUnavailable(f"lease {held.key} was lost (renewal refused: {code or exc.status_code}); another run may hold it") from None
            raise LeaseUnavailable(f"lease {held.key} could not be confirmed ({exc.status_code} {code}); stopping before the write") from None
        except AzureError as exc:
            raise LeaseUnavailable(f"lease {held.key} could not be confirmed ({type(exc).__name__}); stopping before the write") from None
        held.renewed_at = started
        held.renewals += 1

    async def _release(self, client: BlobLeaseClient, key: str, duration: int) -> None:
        try:
            await self._pool.run(client.release)
            log.info("lease %s: released", key)
        except AzureError as exc:
            # Not raised: the block's outcome matters more, and the lease expires anyway.
            log.warning("lease %s: release failed (%s); it expires within %d s", key, type(exc).__name__, duration)

    async def aclose(self) -> None:
        self._pool.close()
        await asyncio.to_thread(self._container.close)


def _blob_name(key: str) -> str:
    if not key or len(key) > 512 or key.endswith((".", "/")):
        raise ValueError(f"unusable lease key {key!r}")
    return key


def _acquire_or_refuse(client: BlobLeaseClient, key: str, duration: int) -> None:
    try:
        client.acquire(lease_duration=duration)
    except ResourceExistsError as exc:  # 409 LeaseAlreadyPresent
        if _error_code(exc) in ("LeaseAlreadyPresent", None):
            raise LeaseUnavailable(f"lease {key} is held by another run") from None
        raise


def _create_blob(container: ContainerClient, blob: BlobClient) -> None:
    """Create the container and the empty blob, tolerating concurrent creators."""
    try:
        container.create_container()
    except ResourceExistsError:  # 409 ContainerAlreadyExists: another creator won
        pass
    try:
        blob.upload_blob(b"", overwrite=False)
    except (ResourceExistsError, ResourceModifiedError):
        # 409 BlobAlreadyExists, or 412 when the winner already leased it.
        pass


def lease_from_settings(
    connection_string: str | None,
    account_url: str | None,
    credential: Any = None,
    *,
    container: str = DEFAULT_CONTAINER,
    timeout_seconds: float = 10.0,
    retry_total: int = 2,
    **options: Any,
) -> BlobLease:
    """A BlobLease from a connection string (Azurite, or a key-based AzureWebJobsStorage)
    or an account URL (``https://<account>.blob.core.windows.net``) with an azure-identity
    credential (the home tenant's managed identity: ``credential_for(config, home)``).

    Retries and timeouts are kept short: a renewal stuck for longer than the lease
    lasts is worth nothing. ``options`` go to BlobLease (``renew_every``, ``concurrency``).
    """
    client_options: dict[str, Any] = {"connection_timeout": timeout_seconds, "read_timeout": timeout_seconds, "retry_total": retry_total}
    if connection_string:
        client = ContainerClient.from_connection_string(connection_string, container, **client_options)
    elif account_url:
        if credential is None:
            raise ValueError("a storage account URL needs a credential")
        client = ContainerClient(account_url, container, credential=credential, **client_options)
    else:
        raise ValueError("the blob lease needs a storage connection string or an account URL")
    return BlobLease(client, **options)


# ---------------------------------------------------------------- local lease


class LocalLease:
    """One machine: an in-process set (threads and event loops alike) plus an
    advisory ``flock`` on ``<directory>/<key>.lock``, which the OS drops when the
    process dies. ``ttl`` is accepted and unused: nothing here needs renewing."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self._directory = Path(directory) if directory is not None else Path.home() / ".cache" / "sso-monitor" / "locks"
        self._held: set[str] = set()
        self._guard = threading.Lock()

    @asynccontextmanager
    async def hold(self, key: str, *, ttl: timedelta = DEFAULT_TTL) -> AsyncIterator[HeldLease]:
        with self._guard:
            if key in self._held:
                raise LeaseUnavailable(f"lease {key} is held by another run in this process")
            self._held.add(key)
        try:
            release_file = self._lock_file(key)
        except BaseException:
            with self._guard:
                self._held.discard(key)
            raise
        log.debug("lease %s: acquired (local)", key)
        try:
            yield HeldLease(key)
        finally:
            release_file()
            with self._guard:
                self._held.discard(key)
            log.debug("lease %s: released (local)", key)

    def _lock_file(self, key: str) -> Callable[[], None]:
        """Take the file lock, or raise LeaseUnavailable; returns its release."""
        if fcntl is None:  # pragma: no cover - Windows
            return lambda: None
        self._directory.mkdir(parents=True, exist_ok=True)
        # The file stays after release: removing it would let a waiter lock an
        # unlinked inode while a newcomer locks a fresh file of the same name.
        fd = os.open(self._directory / _file_name(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LeaseUnavailable(f"lease {key} is held by another process on this machine") from None
        except BaseException:
            os.close(fd)
            raise

        def release() -> None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        return release


def _file_name(key: str) -> str:
    if not key:
        raise ValueError("unusable lease key ''")
    name = quote(key, safe="-_.")
    if len(name) > 200 or name.startswith("."):
        name = hashlib.sha256(key.encode()).hexdigest()
    return f"{name}.lock"
