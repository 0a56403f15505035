"""The alert store (alert_ports.AlertStore): what the alerts remember between runs.

Three implementations of one contract, and ``alert_store_from_settings`` to
pick one:

- ``TableAlertStore``: Azure Table Storage in the Function App's own storage
  account (AzureWebJobsStorage), the deployed monitor's.
- ``FileAlertStore``: one JSON file, for CLI runs on one machine.
- ``MemoryAlertStore``: a dict, for the demo and tests.

The contract, the same for all three (tests/adapters/test_alert_store.py runs
one suite against each): partition and key are ``[A-Za-z0-9._-]{1,200}``
(Azure Table forbids ``/ \\ # ?`` and control characters in keys; the rest is
kept out so that keys are safe everywhere); ``data`` is a JSON object of at
most 64 KiB as compact JSON in UTF-16 (Azure Table's limit for one string
property); anything else is a ValueError naming the partition and key, raised
before anything is written. ``put`` replaces whole items (no merge of fields);
of two items with one partition and key in one ``put`` the last wins;
deleting a missing item is success; ``list`` answers in key order.

Why the synchronous TableClient in a ``BlockingPool`` and not the aio client or
``asyncio.to_thread``: the same reasons as the blob lease's and Key Vault's
(docs/decisions.md). ``credential_for`` builds sync credentials, the aio
transport needs aiohttp, which we do not declare, and the default executor
that ``to_thread`` uses is shared with everything else in the process, so a
burst of store writes would queue behind URL probes and token requests. A pool
of its own, sized from ``network.concurrency``, bounds the store's requests
too. The file store uses a pool of one thread: its writes are serialised by the
file lock anyway.

SDK objects and errors stop here: azure-core exceptions become ``AccessDenied``
(403, or our identity refused), ``Throttled`` (429, or 503 ServerBusy, after
the SDK's own retries), ``TransientError`` (other 5xx, connection failures)
or ``ExternalError``, all with the service "table storage", chained with
``raise ... from``. Messages carry the table, partition, key, status and error
code; never the connection string, the account key or a request.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.errors import azure_error
from sso_monitor.adapters.storage.endpoints import service_endpoint
from sso_monitor.adapters.threads import BlockingPool
from sso_monitor.alerts.ports import AlertStore, StoredItem
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import MonitorError

try:  # POSIX only; elsewhere FileAlertStore excludes within one store object only.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

SERVICE = "table storage"
DEFAULT_TABLE = "ssomonitoralerts"
NAME = re.compile(r"[A-Za-z0-9._-]{1,200}")  # partitions and keys; used with fullmatch
TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")  # Azure's rule for table names
# Azure Table: a string property holds at most 64 KiB, stored as UTF-16. The
# entity's own 1 MiB cap cannot be reached with one such property and two keys.
MAX_DATA_BYTES = 64 * 1024
# Entity group transactions: at most 100 operations and a 4 MiB body.
BATCH_ITEMS = 100
BATCH_BYTES = 3 * 1024 * 1024  # below 4 MiB, leaving room for the multipart framing
_OPERATION_OVERHEAD = 1024  # per operation in a transaction body: headers, URL, keys


# ---------------------------------------------------------------- the contract, shared


def check_name(value: str, what: str) -> str:
    """A partition or key as the contract allows it, or ValueError."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValueError(f"alert store: {what} {value!r} is not 1 to 200 of A-Z a-z 0-9 . _ -")
    return value


def check_place(partition: str, key: str) -> None:
    check_name(partition, "partition")
    check_name(key, "key")


def encode(item: StoredItem) -> str:
    """The item's data as compact JSON, checked against the contract; ValueError naming it."""
    check_place(item.partition, item.key)
    where = f"{item.partition}/{item.key}"
    if not isinstance(item.data, dict):
        raise TypeError(f"alert store: {where}: data must be a dict (a JSON object), not {type(item.data).__name__}")
    try:
        text = json.dumps(item.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        size = len(text.encode("utf-16-le"))  # also refuses lone surrogates, which no store can keep
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alert store: {where}: data is not JSON ({exc})") from exc
    if size > MAX_DATA_BYTES:
        raise ValueError(f"alert store: {where}: data is {size} bytes as JSON in UTF-16; Azure Table takes at most {MAX_DATA_BYTES}")
    return text


def decode(text: Any, where: str) -> dict[str, Any]:
    """Stored JSON back to data; a MonitorError naming ``where`` if it is not ours."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise MonitorError(f"alert store: {where}: stored data is not JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise MonitorError(f"alert store: {where}: stored data is not a JSON object")
    return data


def _encoded(items: Sequence[StoredItem]) -> dict[tuple[str, str], str]:
    """Every item checked before anything is written; the last of duplicates wins."""
    return {(item.partition, item.key): encode(item) for item in items}


# ---------------------------------------------------------------- memory


CLAIMED_UNTIL = "claimedUntil"


def claimable(data: Mapping[str, Any], now: datetime) -> bool:
    """No claim on the item, or one that has expired (its holder crashed or hung)."""
    held = data.get(CLAIMED_UNTIL)
    if not held:
        return True
    try:
        return datetime.fromisoformat(str(held)) <= now
    except ValueError:  # not ours to trust: a claim that cannot be read holds nothing
        return True


class MemoryAlertStore:
    """A dict of JSON texts (not objects: what a caller mutates after ``put`` or
    ``get`` does not change the store, and data round-trips as in the others)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], str] = {}
        self._guard = threading.Lock()

    async def get(self, partition: str, key: str) -> StoredItem | None:
        check_place(partition, key)
        with self._guard:
            text = self._items.get((partition, key))
        return None if text is None else StoredItem(partition, key, decode(text, f"{partition}/{key}"))

    async def list(self, partition: str) -> builtins.list[StoredItem]:
        check_name(partition, "partition")
        with self._guard:
            rows = sorted((k, t) for (p, k), t in self._items.items() if p == partition)
        return [StoredItem(partition, key, decode(text, f"{partition}/{key}")) for key, text in rows]

    async def put(self, items: Sequence[StoredItem]) -> None:
        rows = _encoded(items)
        with self._guard:
            self._items.update(rows)

    async def delete(self, partition: str, key: str) -> None:
        check_place(partition, key)
        with self._guard:
            self._items.pop((partition, key), None)

    async def claim(self, partition: str, key: str, now: datetime, until: datetime) -> StoredItem | None:
        check_place(partition, key)
        with self._guard:
            text = self._items.get((partition, key))
            if text is None:
                return None
            data = decode(text, f"{partition}/{key}")
            if not claimable(data, now):
                return None
            data[CLAIMED_UNTIL] = until.isoformat()
            self._items[(partition, key)] = encode(StoredItem(partition, key, data))
        return StoredItem(partition, key, data)

    async def aclose(self) -> None:
        pass


# ---------------------------------------------------------------- file

_FILE_VERSION = 1


class FileAlertStore:
    """One JSON file: ``{"version": 1, "items": {partition: {key: data}}}``.

    Writes take an exclusive ``flock`` on the sibling ``<name>.lock`` (POSIX only;
    on Windows only writes through one store object exclude each other), read the
    file afresh, and replace it atomically: a temporary file in the same folder,
    fsynced, then ``os.replace``. So two CLI runs do not lose each other's writes,
    and a crash leaves the old file or the new one, never half of one. Reads take
    no lock: the file they open is always a whole one. The file is created with
    mode 0600. A file that is not a store (corrupt, or someone else's) is a
    MonitorError naming it, for reads and writes alike: its state is never dropped.
    """

    def __init__(self, path: str | Path, *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_timeout = lock_timeout
        self._pool = BlockingPool(1, "alert-file")

    async def get(self, partition: str, key: str) -> StoredItem | None:
        check_place(partition, key)
        items = await self._pool.run(self._read)
        data = items.get(partition, {}).get(key)
        return None if data is None else StoredItem(partition, key, data)

    async def list(self, partition: str) -> builtins.list[StoredItem]:
        check_name(partition, "partition")
        items = await self._pool.run(self._read)
        return [StoredItem(partition, key, data) for key, data in sorted(items.get(partition, {}).items())]

    async def put(self, items: Sequence[StoredItem]) -> None:
        rows = _encoded(items)
        if rows:
            await self._pool.run(self._update, {place: decode(text, "/".join(place)) for place, text in rows.items()}, ())

    async def delete(self, partition: str, key: str) -> None:
        check_place(partition, key)
        await self._pool.run(self._update, {}, ((partition, key),))

    async def claim(self, partition: str, key: str, now: datetime, until: datetime) -> StoredItem | None:
        check_place(partition, key)
        return await self._pool.run(self._claim, partition, key, now, until)

    async def aclose(self) -> None:
        self._pool.close()

    # The rest runs in the pool's thread.

    def _update(self, puts: Mapping[tuple[str, str], dict[str, Any]], deletes: Sequence[tuple[str, str]]) -> None:
        with self._exclusive():
            items = self._read()
            changed = bool(puts)
            for (partition, key), data in puts.items():
                items.setdefault(partition, {})[key] = data
            for partition, key in deletes:
                if items.get(partition, {}).pop(key, None) is not None:
                    changed = True
                    if not items[partition]:
                        del items[partition]
            if changed:
                self._write({"version": _FILE_VERSION, "items": items})

    def _claim(self, partition: str, key: str, now: datetime, until: datetime) -> StoredItem | None:
        with self._exclusive():
            items = self._read()
            data = items.get(partition, {}).get(key)
            if data is None or not claimable(data, now):
                return None
            data[CLAIMED_UNTIL] = until.isoformat()
            self._write({"version": _FILE_VERSION, "items": items})
        return StoredItem(partition, key, data)

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError as exc:
            raise self._corrupt("not UTF-8 text") from exc
        except OSError as exc:
            raise MonitorError(f"alert store {self.path}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise self._corrupt(f"not JSON: {exc}") from exc
        if not isinstance(document, dict) or document.get("version") != _FILE_VERSION or not isinstance(document.get("items"), dict):
            raise self._corrupt(f'not an alert store file (expected {{"version": {_FILE_VERSION}, "items": {{...}}}})')
        items = document["items"]
        for partition, rows in items.items():
            if not isinstance(rows, dict) or not all(isinstance(data, dict) for data in rows.values()):
                raise self._corrupt(f"partition {partition!r} is not an object of JSON objects")
        return items

    def _corrupt(self, reason: str) -> MonitorError:
        return MonitorError(f"alert store {self.path}: {reason}; it was left as it is (move it aside to start afresh)")

    def _write(self, document: dict[str, Any]) -> None:
        text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True, allow_nan=False)
        directory = self.path.parent
        try:
            fd, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)  # mode 0600
        except OSError as exc:
            raise MonitorError(f"alert store {self.path}: cannot write ({exc.strerror})") from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise MonitorError(f"alert store {self.path}: cannot write ({exc.strerror or exc}); the previous file is intact") from exc
            raise
        _fsync_directory(directory)  # the rename itself survives a power cut

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise MonitorError(f"alert store {self.path}: cannot lock {self._lock_path} ({exc.strerror})") from exc
        try:
            if fcntl is not None:
                self._lock(fd)
            yield
        finally:
            os.close(fd)  # releases the lock; the lock file stays (see LocalLease)

    def _lock(self, fd: int) -> None:
        """An exclusive flock, polled so that a hung holder makes us fail, not hang."""
        deadline = time.monotonic() + self._lock_timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MonitorError(
                        f"alert store {self.path}: still locked by another process after {self._lock_timeout:.0f} s ({self._lock_path})"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system allows it
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------- Azure Table Storage


class TableAlertStore:
    """Azure Table Storage: PartitionKey = partition, RowKey = key, ``data`` (the
    JSON text) and ``updated`` (when it was written). The table is created by the
    first ``put`` that finds it missing; reads of a missing table find nothing.

    ``put`` sends each partition's items as entity group transactions (upserts
    that replace) of up to 100 items and 3 MiB, concurrently within the pool's
    bound: one request per 100 items. Each transaction is all or nothing; a
    ``put`` that fails may have written some of its transactions, and putting
    the same items again is safe.
    """

    def __init__(self, config: MonitorConfig, table: str = DEFAULT_TABLE, *, timeout_seconds: float = 10.0, retry_total: int = 3) -> None:
        if not TABLE_NAME.fullmatch(table):
            raise ValueError(f"alert store: table name {table!r} is not a letter then 2 to 62 letters or digits")
        self.table = table
        self._client = _table_client(config, table, {"connection_timeout": timeout_seconds, "read_timeout": timeout_seconds, "retry_total": retry_total})
        self._pool = BlockingPool(config.network.concurrency, "alert-table")

    async def get(self, partition: str, key: str) -> StoredItem | None:
        check_place(partition, key)
        where = f"{partition}/{key}"
        try:
            entity = await self._pool.run(self._get, partition, key)
        except AzureError as exc:
            raise azure_error(SERVICE, f"{self.table} {where}: get", exc, "storage") from exc
        return None if entity is None else StoredItem(partition, key, decode(entity.get("data"), f"table {self.table} {where}"))

    async def list(self, partition: str) -> builtins.list[StoredItem]:
        check_name(partition, "partition")
        try:
            entities = await self._pool.run(self._query, partition)
        except AzureError as exc:
            raise azure_error(SERVICE, f"{self.table} {partition}: list", exc, "storage") from exc
        rows = sorted((str(e["RowKey"]), e.get("data")) for e in entities)
        return [StoredItem(partition, key, decode(text, f"table {self.table} {partition}/{key}")) for key, text in rows]

    async def put(self, items: Sequence[StoredItem]) -> None:
        rows = _encoded(items)
        if not rows:
            return
        updated = datetime.now(UTC)
        batches = transaction_batches(rows)
        log.debug("alert store: putting %d item(s) into table %s in %d transaction(s)", len(rows), self.table, len(batches))
        outcomes = await asyncio.gather(*(self._pool.run(self._submit, batch, updated) for batch in batches), return_exceptions=True)
        failures = [(batch, outcome) for batch, outcome in zip(batches, outcomes, strict=True) if isinstance(outcome, BaseException)]
        if not failures:
            return
        batch, failure = failures[0]  # the first tells what went wrong; the count tells how much
        if not isinstance(failure, AzureError):
            raise failure
        what = f"{self.table} {batch[0][0][0]}: put of {len(batch)} item(s)"
        if len(batches) > 1:
            what += f" ({len(failures)} of {len(batches)} transactions failed)"
        raise azure_error(SERVICE, what, failure, "storage") from failure

    async def delete(self, partition: str, key: str) -> None:
        check_place(partition, key)
        try:
            await self._pool.run(self._client.delete_entity, partition, key)  # a missing entity or table: no error
        except AzureError as exc:
            raise azure_error(SERVICE, f"{self.table} {partition}/{key}: delete", exc, "storage") from exc

    async def claim(self, partition: str, key: str, now: datetime, until: datetime) -> StoredItem | None:
        check_place(partition, key)
        where = f"{partition}/{key}"
        try:
            return await self._pool.run(self._claim, partition, key, now, until)
        except AzureError as exc:
            raise azure_error(SERVICE, f"{self.table} {where}: claim", exc, "storage") from exc

    async def aclose(self) -> None:
        self._pool.close()
        await asyncio.to_thread(self._client.close)

    # The rest runs in the pool's threads.

    def _get(self, partition: str, key: str) -> Mapping[str, Any] | None:
        try:
            return self._client.get_entity(partition, key, select=["data"])
        except HttpResponseError as exc:
            if exc.status_code == 404:  # no such entity, or no table yet
                return None
            raise

    def _claim(self, partition: str, key: str, now: datetime, until: datetime) -> StoredItem | None:
        # Optimistic concurrency (the entity's ETag, If-Match): of two runs that read the
        # same unclaimed item, one replace succeeds and the other gets 412 and leaves it.
        where = f"table {self.table} {partition}/{key}"
        try:
            entity = self._client.get_entity(partition, key)
        except HttpResponseError as exc:
            if exc.status_code == 404:  # sent and deleted by another run, or no table
                return None
            raise
        data = decode(entity.get("data"), where)
        if not claimable(data, now):
            return None
        data[CLAIMED_UNTIL] = until.isoformat()
        try:
            self._client.update_entity(
                {"PartitionKey": partition, "RowKey": key, "data": encode(StoredItem(partition, key, data)), "updated": datetime.now(UTC)},
                mode=UpdateMode.REPLACE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):  # another run claimed, sent or deleted it first
            return None
        except HttpResponseError as exc:
            if exc.status_code in (404, 412):
                return None
            raise
        return StoredItem(partition, key, data)

    def _query(self, partition: str) -> builtins.list[Mapping[str, Any]]:
        try:
            # Parameterised: the SDK quotes the value. NAME keeps quotes out anyway.
            return builtins.list(self._client.query_entities("PartitionKey eq @partition", parameters={"partition": partition}, select=["RowKey", "data"]))
        except HttpResponseError as exc:
            if exc.status_code == 404:  # no table yet
                return []
            raise

    def _submit(self, batch: Sequence[tuple[tuple[str, str], str]], updated: datetime) -> None:
        operations = [
            ("upsert", {"PartitionKey": partition, "RowKey": key, "data": text, "updated": updated}, {"mode": UpdateMode.REPLACE})
            for (partition, key), text in batch
        ]
        try:
            self._client.submit_transaction(operations)
            return
        except HttpResponseError as exc:
            if exc.status_code != 404:  # an upsert never misses its entity: 404 is the table
                raise
        log.info("alert store: creating table %s", self.table)
        try:
            self._client.create_table()
        except ResourceExistsError:  # another writer created it meanwhile
            pass
        self._client.submit_transaction(operations)


def transaction_batches(rows: Mapping[tuple[str, str], str]) -> builtins.list[builtins.list[tuple[tuple[str, str], str]]]:
    """Rows grouped by partition into entity group transactions: at most BATCH_ITEMS
    operations and BATCH_BYTES of estimated body each (the SDK sends the JSON with
    non-ASCII characters escaped: up to six bytes for one)."""
    by_partition: dict[str, builtins.list[tuple[tuple[str, str], str]]] = {}
    for place, text in rows.items():
        by_partition.setdefault(place[0], []).append((place, text))
    batches: builtins.list[builtins.list[tuple[tuple[str, str], str]]] = []
    for group in by_partition.values():
        batch: builtins.list[tuple[tuple[str, str], str]] = []
        size = 0
        for place, text in group:
            cost = len(json.dumps(text)) + len(place[0]) + len(place[1]) + _OPERATION_OVERHEAD
            if batch and (len(batch) == BATCH_ITEMS or size + cost > BATCH_BYTES):
                batches.append(batch)
                batch, size = [], 0
            batch.append((place, text))
            size += cost
        batches.append(batch)
    return batches


def table_endpoint(blob_url: str) -> str:
    """https://<account>.blob.<suffix> -> https://<account>.table.<suffix>."""
    return service_endpoint(blob_url, "table")


def _table_client(config: MonitorConfig, table: str, options: dict[str, Any]) -> TableClient:
    storage = config.storage
    if storage.connection_string is not None:
        try:
            return TableClient.from_connection_string(storage.connection_string.reveal(), table, **options)
        except ValueError:
            # Not chained: the SDK's message may quote the connection string.
            raise ValueError("alert store: the storage connection string (AzureWebJobsStorage) is malformed") from None
    if storage.account_url:
        return TableClient(table_endpoint(storage.account_url), table, credential=credential_for(config, config.home_tenant_id), **options)
    raise ValueError("alert store: no storage configured: set AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__accountName")


# ---------------------------------------------------------------- choosing one


def alert_store_from_settings(config: MonitorConfig, *, local_path: Path | None = None) -> AlertStore:
    """The file at ``local_path`` when given (CLI runs); else Azure Table Storage when
    the Function App's storage is configured; else memory (the demo, tests)."""
    if local_path is not None:
        return FileAlertStore(local_path)
    if config.storage.connection_string is not None or config.storage.account_url:
        return TableAlertStore(config)
    return MemoryAlertStore()
