"""The alert store: one contract suite run against the memory, file and Azure Table
stores (the last against Azurite), then what only one of them has to prove.

Assertions are on what the store holds afterwards (through the store, a fresh
store on the same file or table, or the file and the table themselves), not on
the calls it made.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import tempfile
import traceback
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_monitor.adapters.storage.alert_store import (
    MAX_DATA_BYTES,
    FileAlertStore,
    MemoryAlertStore,
    TableAlertStore,
    alert_store_from_settings,
    table_endpoint,
    transaction_batches,
)
from sso_monitor.alerts.ports import AlertStore, StoredItem
from sso_monitor.config import MonitorConfig, StorageConfig
from sso_monitor.errors import AccessDenied, ExternalError, MonitorError, TransientError
from sso_monitor.models import SecretValue

ROOT = Path(__file__).resolve().parents[2]
# A well-formed account key that is not Azurite's: what a wrong AzureWebJobsStorage holds.
WRONG_KEY = b64encode(b"not-the-azurite-account-key-0123456789abcdef-ZZZZZZZZZZZZZZZZZZZ").decode()
# The largest data the contract allows: {"x":"aaa..."} at exactly MAX_DATA_BYTES in UTF-16.
LARGEST = {"x": "a" * (MAX_DATA_BYTES // 2 - len('{"x":""}'))}


def config_with(connection_string: str | None = None, account_url: str | None = None) -> MonitorConfig:
    storage = StorageConfig(connection_string=SecretValue(connection_string) if connection_string else None, account_url=account_url)
    return MonitorConfig(apps=(), vault_url="https://kv.vault.azure.net", home_tenant_id="00000000-0000-0000-0000-000000000001", identities={}, storage=storage)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def items(partition: str, count: int, start: int = 0) -> list[StoredItem]:
    return [StoredItem(partition, f"k{i:04d}", {"n": i}) for i in range(start, start + count)]


def contents(store: AlertStore, partitions: tuple[str, ...]) -> dict[tuple[str, str], dict[str, Any]]:
    async def read() -> dict[tuple[str, str], dict[str, Any]]:
        return {(i.partition, i.key): i.data for p in partitions for i in await store.list(p)}

    return run(read())


def table_exists(connection_string: str, table: str) -> bool:
    with TableServiceClient.from_connection_string(connection_string) as service:
        return any(service.query_tables("TableName eq @name", parameters={"name": table}))


def new_table() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


# ---------------------------------------------------------------- the contract, for each store


@pytest.fixture(params=["memory", "file", "table"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], AlertStore]]:
    """Opens stores on one backing (one dict, file or table per test): a second call
    gives a second store object on the same state, as a second run would have."""
    opened: list[AlertStore] = []
    memory = MemoryAlertStore()
    if request.param == "table":
        config, table = config_with(request.getfixturevalue("azurite_connection_string")), new_table()

    def open_store() -> AlertStore:
        if request.param == "memory":
            store: AlertStore = memory
        elif request.param == "file":
            store = FileAlertStore(tmp_path / "alerts.json")
        else:
            store = TableAlertStore(config, table)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        run(store.aclose())


@pytest.fixture
def store(new_store: Callable[[], AlertStore]) -> AlertStore:
    return new_store()


def test_put_get_list_delete_round_trip(store: AlertStore, new_store: Callable[[], AlertStore]) -> None:
    async def scenario() -> None:
        await store.put([StoredItem("dedupe", "acme.secret-expiry", {"severity": "warning", "days": 14})])
        assert await store.get("dedupe", "acme.secret-expiry") == StoredItem("dedupe", "acme.secret-expiry", {"severity": "warning", "days": 14})
        assert await new_store().get("dedupe", "acme.secret-expiry") is not None  # it is stored, not only cached
        assert await store.list("dedupe") == [StoredItem("dedupe", "acme.secret-expiry", {"severity": "warning", "days": 14})]
        await store.delete("dedupe", "acme.secret-expiry")
        assert await store.get("dedupe", "acme.secret-expiry") is None
        assert await store.list("dedupe") == []

    run(scenario())


def test_an_empty_store_finds_nothing_and_deleting_a_missing_item_succeeds(store: AlertStore) -> None:
    async def scenario() -> None:
        assert await store.get("dedupe", "nothing") is None
        assert await store.list("dedupe") == []
        await store.delete("dedupe", "nothing")  # nothing written yet (no table, no file)
        await store.put(items("dedupe", 1))
        await store.delete("dedupe", "nothing")  # the partition exists, the key does not
        await store.delete("outbox", "k0000")  # the key exists, in another partition
        await store.delete("dedupe", "k0000")
        await store.delete("dedupe", "k0000")  # twice
        assert await store.list("dedupe") == []

    run(scenario())


def test_list_answers_only_the_partition_asked_in_key_order(store: AlertStore) -> None:
    async def scenario() -> None:
        await store.put(
            [
                StoredItem("outbox", "b", {"v": 1}),
                StoredItem("dedupe", "a", {"v": 2}),
                StoredItem("outbox", "a", {"v": 3}),
                StoredItem("outbox.old", "c", {"v": 4}),
            ]
        )
        assert await store.list("outbox") == [StoredItem("outbox", "a", {"v": 3}), StoredItem("outbox", "b", {"v": 1})]
        assert await store.list("dedupe") == [StoredItem("dedupe", "a", {"v": 2})]
        assert await store.list("outbo") == []  # not a prefix match
        assert await store.get("dedupe", "b") is None

    run(scenario())


def test_put_replaces_the_whole_item(store: AlertStore) -> None:
    async def scenario() -> None:
        await store.put([StoredItem("snooze", "acme", {"until": "2025-01-01", "by": "ops@example.com"})])
        await store.put([StoredItem("snooze", "acme", {"until": "2025-02-01"})])
        assert (await store.get("snooze", "acme")) == StoredItem("snooze", "acme", {"until": "2025-02-01"})  # no "by" left over

    run(scenario())


def test_of_two_items_with_one_key_in_one_put_the_last_wins(store: AlertStore) -> None:
    async def scenario() -> None:
        await store.put([StoredItem("dedupe", "a", {"v": 1}), StoredItem("dedupe", "b", {"v": 2}), StoredItem("dedupe", "a", {"v": 3})])
        assert await store.list("dedupe") == [StoredItem("dedupe", "a", {"v": 3}), StoredItem("dedupe", "b", {"v": 2})]

    run(scenario())


def test_unicode_and_nested_data_survive(store: AlertStore) -> None:
    data = {
        "title": "Café Zürich: Geheimnis läuft ab ✓ 🔑 秘密 مفتاح",
        "control": 'tab\tnew line\nnul\u0000 quote" backslash\\ slash/',
        "nested": {"list": [1, 2.5, -3, True, False, None, {"deep": [[], {}, ["x"]]}], "empty": {}},
        "big": 2**70,
        "unicode key ✓": "value",
    }

    async def scenario() -> None:
        await store.put([StoredItem("outbox", "n.1", data)])
        assert (await store.get("outbox", "n.1")) == StoredItem("outbox", "n.1", data)
        assert await store.list("outbox") == [StoredItem("outbox", "n.1", data)]

    run(scenario())


def test_stored_data_does_not_change_with_the_callers_objects(store: AlertStore) -> None:
    async def scenario() -> None:
        data = {"alerts": [1, 2]}
        await store.put([StoredItem("outbox", "a", data)])
        data["alerts"].append(3)
        got = await store.get("outbox", "a")
        assert got is not None
        got.data["alerts"].append(4)
        assert (await store.get("outbox", "a")) == StoredItem("outbox", "a", {"alerts": [1, 2]})

    run(scenario())


BAD_NAMES = ["", "a/b", "a\\b", "a#b", "a?b", "a\tb", "a\u0001b", "ab\n", "a b", "a'b", "café", "x" * 201]


@pytest.mark.parametrize("bad", BAD_NAMES, ids=repr)
def test_an_invalid_partition_or_key_is_refused_and_nothing_is_written(store: AlertStore, bad: str) -> None:
    async def scenario() -> None:
        for call in (
            lambda: store.put([StoredItem("dedupe", "fine", {}), StoredItem(bad, "key", {})]),
            lambda: store.put([StoredItem("dedupe", "fine", {}), StoredItem("dedupe", bad, {})]),
            lambda: store.get(bad, "key"),
            lambda: store.get("dedupe", bad),
            lambda: store.list(bad),
            lambda: store.delete(bad, "key"),
            lambda: store.delete("dedupe", bad),
        ):
            with pytest.raises(ValueError, match="partition|key"):
                await call()
        assert await store.list("dedupe") == []  # "fine" came before the bad item and was not written either

    run(scenario())


def test_the_longest_names_and_the_largest_data_are_accepted(store: AlertStore) -> None:
    partition, key = "p" * 200, "A-z.0_9" + "k" * 193

    async def scenario() -> None:
        await store.put([StoredItem(partition, key, LARGEST)])
        assert (await store.get(partition, key)) == StoredItem(partition, key, LARGEST)

    run(scenario())


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ({"x": "a" * (MAX_DATA_BYTES // 2 - len('{"x":""}') + 1)}, ValueError, "at most"),  # one character over
        ({"x": "🔑" * (MAX_DATA_BYTES // 4)}, ValueError, "at most"),  # within the characters, not the UTF-16 bytes
        ({"when": float("nan")}, ValueError, "not JSON"),
        ({"ids": {1, 2}}, ValueError, "not JSON"),
        ({"text": "lone \ud800 surrogate"}, ValueError, "not JSON"),
        (["not", "a", "dict"], TypeError, "must be a dict"),
    ],
    ids=["one-over", "astral", "nan", "set", "surrogate", "list"],
)
def test_data_the_contract_does_not_allow_is_refused_naming_the_item_and_nothing_is_written(store: AlertStore, data: Any, error: type, message: str) -> None:
    async def scenario() -> None:
        with pytest.raises(error, match=f"outbox/bad.*{message}"):
            await store.put([StoredItem("outbox", "fine", {}), StoredItem("outbox", "bad", data)])
        assert await store.list("outbox") == []

    run(scenario())


def test_over_a_hundred_items_in_one_partition_in_one_put_all_land(store: AlertStore, new_store: Callable[[], AlertStore]) -> None:
    # 250 in one partition is three transactions for Table (100, 100, 50); 30 more elsewhere.
    written = items("dedupe", 250) + items("outbox", 30)

    async def scenario() -> None:
        await store.put(written)
        await store.put([StoredItem("dedupe", "k0100", {"n": "again"})] + items("dedupe", 120, start=250))  # replace one, add 120

    run(scenario())
    expected = {(i.partition, i.key): i.data for i in written + items("dedupe", 120, start=250)}
    expected[("dedupe", "k0100")] = {"n": "again"}
    assert contents(new_store(), ("dedupe", "outbox")) == expected


def test_concurrent_puts_and_deletes_from_many_tasks_all_land(store: AlertStore) -> None:
    async def writer(task: int) -> None:
        for i in range(10):
            await store.put([StoredItem("dedupe", f"t{task}-{i}", {"task": task, "i": i})])
            await store.delete("dedupe", f"gone-{task}-{i}")

    async def scenario() -> None:
        await store.put([StoredItem("dedupe", f"gone-{t}-{i}", {}) for t in range(8) for i in range(10)])
        await asyncio.gather(*(writer(t) for t in range(8)))

    run(scenario())
    assert contents(store, ("dedupe",)) == {("dedupe", f"t{t}-{i}"): {"task": t, "i": i} for t in range(8) for i in range(10)}


def test_of_many_runs_claiming_one_item_at_once_exactly_one_gets_it(new_store: Callable[[], AlertStore]) -> None:
    """The outbox's guard against saying a notice twice: claim is atomic across store objects
    (runs on other instances), and a claim holds until it expires, is put over or deleted."""
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    stores = [new_store() for _ in range(6)]

    async def scenario() -> None:
        await stores[0].put([StoredItem("outbox", "n1", {"notice": "x", "attempts": 0})])
        taken = await asyncio.gather(*(s.claim("outbox", "n1", now, now + timedelta(minutes=10)) for s in stores))
        winners = [t for t in taken if t is not None]
        assert len(winners) == 1 and winners[0].data["notice"] == "x" and winners[0].data["claimedUntil"] == (now + timedelta(minutes=10)).isoformat()
        # held: nobody else takes it while the claim lasts
        assert await stores[1].claim("outbox", "n1", now + timedelta(minutes=9), now + timedelta(minutes=19)) is None
        # expired (its holder died): the next run takes it
        again = await stores[2].claim("outbox", "n1", now + timedelta(minutes=11), now + timedelta(minutes=21))
        assert again is not None and again.data["notice"] == "x"
        # released by a put without the claim: free at once
        await stores[2].put([StoredItem("outbox", "n1", {"notice": "x", "attempts": 1})])
        assert await stores[3].claim("outbox", "n1", now, now + timedelta(minutes=10)) is not None
        # gone: nothing to claim
        await stores[3].delete("outbox", "n1")
        assert await stores[4].claim("outbox", "n1", now, now + timedelta(minutes=10)) is None
        assert await stores[5].claim("outbox", "never-there", now, now + timedelta(minutes=10)) is None

    run(scenario())


# ---------------------------------------------------------------- the contract as a property (memory, file)

NAMES = st.sampled_from(["a", "b", "c.1", "D_2-x"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.lists(st.tuples(NAMES, NAMES, st.dictionaries(st.text(max_size=4), JSON, max_size=3)), max_size=4)),
        st.tuples(st.just("delete"), NAMES, NAMES),
    ),
    max_size=12,
)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def behaves_like_a_dict(store: AlertStore, operations: list[tuple[Any, ...]]) -> None:
    model: dict[tuple[str, str], Any] = {}

    async def scenario() -> None:
        for operation in operations:
            if operation[0] == "put":
                await store.put([StoredItem(p, k, d) for p, k, d in operation[1]])
                model.update({(p, k): d for p, k, d in operation[1]})
            else:
                await store.delete(operation[1], operation[2])
                model.pop((operation[1], operation[2]), None)
        for partition in ("a", "b", "c.1", "D_2-x"):
            assert await store.list(partition) == [StoredItem(p, k, d) for (p, k), d in sorted(model.items()) if p == partition]
            for key in ("a", "b", "c.1", "D_2-x"):
                got = await store.get(partition, key)
                assert got == (StoredItem(partition, key, model[(partition, key)]) if (partition, key) in model else None)

    try:
        run(scenario())
    finally:
        run(store.aclose())


@PROPERTY
@given(OPERATIONS)
def test_property_the_memory_store_behaves_like_a_dict(operations: list[tuple[Any, ...]]) -> None:
    behaves_like_a_dict(MemoryAlertStore(), operations)


@PROPERTY
@given(OPERATIONS)
def test_property_the_file_store_behaves_like_a_dict(operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        behaves_like_a_dict(FileAlertStore(Path(directory) / "alerts.json"), operations)


# ---------------------------------------------------------------- Table Storage only


def test_the_table_is_created_by_the_first_put_and_not_by_reads(azurite_connection_string: str) -> None:
    table = new_table()
    store = TableAlertStore(config_with(azurite_connection_string), table)

    async def scenario() -> None:
        assert await store.get("dedupe", "a") is None
        assert await store.list("dedupe") == []
        await store.delete("dedupe", "a")
        assert not table_exists(azurite_connection_string, table)
        await asyncio.gather(*(store.put(items(f"p{n}", 3)) for n in range(4)))  # four puts race to create it
        assert table_exists(azurite_connection_string, table)

    try:
        run(scenario())
    finally:
        run(store.aclose())
    assert len(contents(TableAlertStore(config_with(azurite_connection_string), table), ("p0", "p1", "p2", "p3"))) == 12


def test_an_entity_is_partition_row_key_data_and_updated(azurite_connection_string: str) -> None:
    table = new_table()
    store = TableAlertStore(config_with(azurite_connection_string), table)
    try:
        run(store.put([StoredItem("outbox", "n1", {"a": [1, "é"]})]))
    finally:
        run(store.aclose())
    with TableServiceClient.from_connection_string(azurite_connection_string) as service:
        entity = service.get_table_client(table).get_entity("outbox", "n1")
    assert dict(entity).keys() == {"PartitionKey", "RowKey", "data", "updated"}
    assert entity["data"] == '{"a":[1,"é"]}'  # compact, characters as they are
    assert entity["updated"].tzinfo is not None


def test_an_entity_that_is_not_ours_is_an_error_naming_it(azurite_connection_string: str) -> None:
    table = new_table()
    with TableServiceClient.from_connection_string(azurite_connection_string) as service:
        client = service.create_table(table)
        client.upsert_entity({"PartitionKey": "outbox", "RowKey": "foreign", "data": "not json"})
        client.upsert_entity({"PartitionKey": "outbox", "RowKey": "nodata", "other": "x"})
    store = TableAlertStore(config_with(azurite_connection_string), table)
    try:
        for call, where in (
            (lambda: store.get("outbox", "foreign"), "outbox/foreign"),
            (lambda: store.get("outbox", "nodata"), "outbox/nodata"),
            (lambda: store.list("outbox"), "outbox/"),
        ):
            with pytest.raises(MonitorError, match=f"table {table} {where}.*not JSON"):
                run(call())
    finally:
        run(store.aclose())


def test_too_large_data_is_refused_before_any_request(azurite_connection_string: str) -> None:
    table = new_table()
    store = TableAlertStore(config_with(azurite_connection_string), table)
    try:
        with pytest.raises(ValueError, match="outbox/big"):
            run(store.put([*items("outbox", 5), StoredItem("outbox", "big", {"x": "é" * MAX_DATA_BYTES})]))
    finally:
        run(store.aclose())
    assert not table_exists(azurite_connection_string, table)  # not even created


def test_a_wrong_account_key_is_access_denied_and_the_key_appears_nowhere(azurite_connection_string: str) -> None:
    wrong = azurite_connection_string.replace(azurite_connection_string.split("AccountKey=")[1].split(";")[0], WRONG_KEY)
    assert WRONG_KEY in wrong
    store = TableAlertStore(config_with(wrong), new_table(), retry_total=0)
    calls = [
        lambda: store.put(items("dedupe", 3)),
        lambda: store.put(items("dedupe", 1)),
        lambda: store.get("dedupe", "k0000"),
        lambda: store.list("dedupe"),
        lambda: store.delete("dedupe", "k0000"),
    ]
    try:
        for call in calls:
            with pytest.raises(ExternalError) as caught:
                run(call())
            assert isinstance(caught.value, AccessDenied) and caught.value.service == "table storage" and caught.value.status == 403
            chain = "".join(traceback.format_exception(caught.value))
            assert WRONG_KEY not in chain and WRONG_KEY[:20] not in chain
            assert "AccountKey" not in str(caught.value)
    finally:
        run(store.aclose())


def test_an_unreachable_table_service_is_a_transient_error(azurite_connection_string: str) -> None:
    refused = azurite_connection_string.split("TableEndpoint=")[0] + "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    store = TableAlertStore(config_with(refused), new_table(), retry_total=0, timeout_seconds=2)
    try:
        with pytest.raises(TransientError, match="table storage: .* put"):
            run(store.put(items("dedupe", 2)))
        with pytest.raises(TransientError, match="table storage: .* get"):
            run(store.get("dedupe", "k0000"))
    finally:
        run(store.aclose())


def test_connection_settings() -> None:
    # Connection strings are read, not contacted, when the store is built.
    run(TableAlertStore(config_with("UseDevelopmentStorage=true")).aclose())
    with pytest.raises(ValueError, match="malformed") as caught:
        TableAlertStore(config_with("AccountKey=" + WRONG_KEY))
    assert WRONG_KEY not in "".join(traceback.format_exception(caught.value))
    with pytest.raises(ValueError, match="no storage configured"):
        TableAlertStore(config_with())
    with pytest.raises(ValueError, match="table name"):
        TableAlertStore(config_with("UseDevelopmentStorage=true"), "alerts-table")


@pytest.mark.parametrize(
    ("blob", "table"),
    [
        ("https://acct.blob.core.windows.net", "https://acct.table.core.windows.net"),  # AzureWebJobsStorage__accountName
        ("https://acct.blob.core.windows.net/", "https://acct.table.core.windows.net"),  # __blobServiceUri with a slash
        ("https://acct.blob.core.chinacloudapi.cn", "https://acct.table.core.chinacloudapi.cn"),  # sovereign cloud
        ("https://acct.blob.core.windows.net:443", "https://acct.table.core.windows.net:443"),
    ],
)
def test_the_table_endpoint_comes_from_the_blob_endpoint(blob: str, table: str) -> None:
    assert table_endpoint(blob) == table


@pytest.mark.parametrize("blob", ["https://acct.queue.core.windows.net", "http://acct.blob.core.windows.net", "https://blob.core.windows.net", "not a url"])
def test_an_endpoint_that_is_not_a_blob_endpoint_is_refused(blob: str) -> None:
    with pytest.raises(ValueError, match="table endpoint"):
        table_endpoint(blob)


def test_transactions_hold_one_partition_at_most_100_items_and_3_mib() -> None:
    rows = {(p, f"k{i}"): "{}" for p in ("a", "b") for i in range(230)}
    assert [len(b) for b in transaction_batches(rows)] == [100, 100, 30, 100, 100, 30]
    assert all(len({place[0] for place, _ in b}) == 1 for b in transaction_batches(rows))
    # 30 000 non-ASCII characters: about 180 KB each on the wire, so 17 to a transaction.
    wide = {("a", f"k{i}"): json.dumps({"x": "é" * 30_000}, ensure_ascii=False) for i in range(40)}
    assert [len(b) for b in transaction_batches(wide)] == [17, 17, 6]


def test_the_factory_picks_the_file_then_table_storage_then_memory(tmp_path: Path) -> None:
    configured = config_with("UseDevelopmentStorage=true")
    stores = [
        alert_store_from_settings(configured, local_path=tmp_path / "alerts.json"),
        alert_store_from_settings(configured),
        alert_store_from_settings(config_with(account_url="https://acct.blob.core.windows.net")),
        alert_store_from_settings(config_with()),
    ]
    try:
        assert [type(s) for s in stores] == [FileAlertStore, TableAlertStore, TableAlertStore, MemoryAlertStore]
    finally:
        for store in stores:
            run(store.aclose())


# ---------------------------------------------------------------- the file only


def test_a_crash_between_write_and_replace_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "alerts.json"
    store = FileAlertStore(path)
    run(store.put(items("dedupe", 3)))
    before = path.read_bytes()

    def crash(source: Any, target: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(MonitorError, match="previous file is intact"):
        run(store.put(items("dedupe", 50, start=3)))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.json", "alerts.json.lock"]  # no temporary file left behind
    assert len(contents(FileAlertStore(path), ("dedupe",))) == 3
    run(store.aclose())


_WRITER = """
import asyncio, sys
from pathlib import Path
from sso_monitor.alerts.ports import StoredItem
from sso_monitor.adapters.storage.alert_store import FileAlertStore

async def main():
    store = FileAlertStore(Path(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(50):
        await store.put([StoredItem("dedupe", f"{sys.argv[2]}-{i}", {"writer": sys.argv[2], "i": i})])
    await store.aclose()

asyncio.run(main())
"""


def test_two_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "alerts.json"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), name], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for name in ("first", "second")
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        for writer in writers:  # both start writing at once
            assert writer.stdin is not None
            writer.stdin.write("go\n")
            writer.stdin.flush()
        assert [writer.wait(60) for writer in writers] == [0, 0]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
            for stream in (writer.stdin, writer.stdout):
                if stream is not None:
                    stream.close()
    stored = contents(FileAlertStore(path), ("dedupe",))
    assert stored == {("dedupe", f"{name}-{i}"): {"writer": name, "i": i} for name in ("first", "second") for i in range(50)}


def test_the_file_and_its_lock_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "alerts.json"  # the folder is created too
    store = FileAlertStore(path)
    run(store.put(items("dedupe", 1)))
    run(store.put(items("dedupe", 1, start=1)))  # a replaced file keeps the mode
    run(store.aclose())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name("alerts.json.lock").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        b"{not json",
        b"",
        b'{"version": 1, "items": {"\xff": {}}}',
        b'["a list"]',
        b'{"version": 2, "items": {}}',
        b'{"version": 1, "items": {"dedupe": {"k": "not an object"}}}',
        b'{"version": 1, "items": {"dedupe": []}}',
    ],
    ids=["not-json", "empty", "not-utf8", "list", "version", "item", "partition"],
)
def test_a_corrupt_file_is_an_error_naming_it_and_is_left_alone(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "alerts.json"
    path.write_bytes(text)
    store = FileAlertStore(path)
    try:
        for call in (
            lambda: store.get("dedupe", "k"),
            lambda: store.list("dedupe"),
            lambda: store.put(items("dedupe", 1)),
            lambda: store.delete("dedupe", "k"),
        ):
            with pytest.raises(MonitorError, match=str(path)):
                run(call())
    finally:
        run(store.aclose())
    assert path.read_bytes() == text


def test_a_file_locked_for_too_long_is_an_error_not_a_hang(tmp_path: Path) -> None:
    import fcntl

    path = tmp_path / "alerts.json"
    fd = os.open(tmp_path / "alerts.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another run holds it
    store = FileAlertStore(path, lock_timeout=0.2)
    try:
        with pytest.raises(MonitorError, match="still locked"):
            run(store.put(items("dedupe", 1)))
        assert run(store.list("dedupe")) == []  # reads need no lock
    finally:
        os.close(fd)
    run(store.put(items("dedupe", 1)))
    assert len(run(store.list("dedupe"))) == 1
    run(store.aclose())
