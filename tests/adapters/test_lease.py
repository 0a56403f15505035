"""The rotation's lease: BlobLease against Azurite, LocalLease across threads and processes.

Assertions are on the lease's state in storage (the blob's lease properties)
and on who got in, not on the SDK calls made.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobLeaseClient, ContainerClient

from sso_monitor.adapters.storage.lease import BlobLease, HeldLease, LocalLease, lease_from_settings, lease_seconds
from sso_monitor.errors import AccessDenied, LeaseUnavailable, TransientError

KEY = "0000aaaa-11bb-22cc-33dd-444444eeeeee-app"
SHORT = timedelta(seconds=15)  # Azure's shortest lease


@pytest.fixture
def container() -> str:
    """A container of its own per test; BlobLease creates it on first use."""
    return f"leases-{uuid.uuid4().hex[:12]}"


def blob_lease(connection_string: str, container: str, **options: object) -> BlobLease:
    return lease_from_settings(connection_string, None, None, container=container, **options)  # type: ignore[arg-type]


def lease_state(connection_string: str, container: str, key: str = KEY) -> str:
    with ContainerClient.from_connection_string(connection_string, container) as client:
        return client.get_blob_client(key).get_blob_properties().lease.state


async def closing(*leases: BlobLease) -> None:
    for lease in leases:
        await lease.aclose()


# ---------------------------------------------------------------- pure


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        (timedelta(seconds=60), 60),  # the default: Azure's longest finite lease
        (timedelta(minutes=10), 60),  # longer ttl: renewal, not a longer lease, keeps it
        (timedelta(seconds=5), 15),  # below Azure's minimum
        (timedelta(seconds=30), 30),  # within bounds, as asked
    ],
)
def test_lease_seconds_stay_within_azures_bounds(ttl: timedelta, seconds: int) -> None:
    assert lease_seconds(ttl) == seconds


def test_lease_from_settings_needs_a_connection_string_or_an_account_url() -> None:
    with pytest.raises(ValueError, match="connection string or an account URL"):
        lease_from_settings(None, None, None)
    with pytest.raises(ValueError, match="credential"):
        lease_from_settings(None, "https://acct.blob.core.windows.net", None)


def test_a_held_lease_counts_as_lost_once_its_duration_passes_without_renewal() -> None:
    held = HeldLease(KEY, duration=15)
    held.ensure()
    held.renewed_at -= 16
    assert held.lost
    with pytest.raises(LeaseUnavailable, match="was lost"):
        held.ensure()


# ---------------------------------------------------------------- BlobLease on Azurite


def test_acquire_creates_the_blob_holds_it_and_release_frees_it(azurite_connection_string: str, container: str) -> None:
    async def run() -> None:
        lease = blob_lease(azurite_connection_string, container)
        try:
            async with lease.hold(KEY, ttl=SHORT) as held:
                assert held.key == KEY and not held.lost
                assert lease_state(azurite_connection_string, container) == "leased"
            assert lease_state(azurite_connection_string, container) == "available"
        finally:
            await lease.aclose()

    asyncio.run(run())


def test_a_second_holder_is_refused_while_held_and_gets_it_after_release(azurite_connection_string: str, container: str) -> None:
    async def run() -> None:
        # Two clients, as two Function App instances would have.
        first, second = blob_lease(azurite_connection_string, container), blob_lease(azurite_connection_string, container)
        try:
            async with first.hold(KEY, ttl=SHORT):
                with pytest.raises(LeaseUnavailable, match=KEY):
                    async with second.hold(KEY, ttl=SHORT):
                        pytest.fail("two holders at once")
            async with second.hold(KEY, ttl=SHORT):
                assert lease_state(azurite_connection_string, container) == "leased"
        finally:
            await closing(first, second)

    asyncio.run(run())


def test_renewal_keeps_the_lease_with_its_id(azurite_connection_string: str, container: str) -> None:
    # A renewal succeeds only with the lease's id on a lease the service still
    # holds, so counted renewals prove the background task keeps this lease.
    async def run() -> None:
        lease = blob_lease(azurite_connection_string, container, renew_every=0.1)
        other = blob_lease(azurite_connection_string, container)
        try:
            async with lease.hold(KEY, ttl=SHORT) as held:
                await asyncio.sleep(0.7)
                assert held.renewals >= 3 and not held.lost
                assert lease_state(azurite_connection_string, container) == "leased"
                with pytest.raises(LeaseUnavailable):
                    async with other.hold(KEY, ttl=SHORT):
                        pass
            assert lease_state(azurite_connection_string, container) == "available"
        finally:
            await closing(lease, other)

    asyncio.run(run())


def test_a_broken_lease_is_noticed_by_its_holder(azurite_connection_string: str, container: str, caplog: pytest.LogCaptureFixture) -> None:
    # An operator (or anything else) breaks the lease: the next renewal is refused,
    # the holder sees ``lost`` and ``ensure()`` stops it before its next step.
    async def run() -> None:
        lease = blob_lease(azurite_connection_string, container, renew_every=0.1)
        other = blob_lease(azurite_connection_string, container)
        try:
            async with lease.hold(KEY, ttl=SHORT) as held:
                with ContainerClient.from_connection_string(azurite_connection_string, container) as client:
                    BlobLeaseClient(client.get_blob_client(KEY)).break_lease(lease_break_period=0)
                for _ in range(50):
                    if held.lost:
                        break
                    await asyncio.sleep(0.05)
                assert held.lost
                with pytest.raises(LeaseUnavailable, match="was lost"):
                    held.ensure()
                async with other.hold(KEY, ttl=SHORT):  # the next run proceeds
                    pass
        finally:
            await closing(lease, other)

    asyncio.run(run())
    assert "lost" in caplog.text


def test_ten_concurrent_holders_of_one_key_let_exactly_one_in(azurite_connection_string: str, container: str) -> None:
    # The container and blob do not exist yet: the ten also race to create them.
    async def run() -> list[bool]:
        leases = [blob_lease(azurite_connection_string, container) for _ in range(10)]
        refused: list[int] = []
        all_refused = asyncio.Event()

        async def attempt(index: int) -> bool:
            try:
                async with leases[index].hold(KEY, ttl=SHORT):
                    # Hold until every other attempt has been answered.
                    await asyncio.wait_for(all_refused.wait(), timeout=20)
                    return True
            except LeaseUnavailable:
                refused.append(index)
                if len(refused) == 9:
                    all_refused.set()
                return False

        try:
            return await asyncio.gather(*(attempt(i) for i in range(10)))
        finally:
            await closing(*leases)

    results = asyncio.run(run())
    assert results.count(True) == 1
    assert lease_state(azurite_connection_string, container) == "available"


def test_different_keys_do_not_block_each_other(azurite_connection_string: str, container: str) -> None:
    async def run() -> None:
        lease = blob_lease(azurite_connection_string, container)
        try:
            async with lease.hold("tenant-a-app-1", ttl=SHORT), lease.hold("tenant-a-app-2", ttl=SHORT):
                assert lease_state(azurite_connection_string, container, "tenant-a-app-1") == "leased"
                assert lease_state(azurite_connection_string, container, "tenant-a-app-2") == "leased"
        finally:
            await lease.aclose()

    asyncio.run(run())


def test_the_lease_is_released_when_the_block_raises(azurite_connection_string: str, container: str) -> None:
    async def run() -> None:
        lease = blob_lease(azurite_connection_string, container)
        try:
            with pytest.raises(RuntimeError, match="step failed"):
                async with lease.hold(KEY, ttl=SHORT):
                    raise RuntimeError("step failed")
            assert lease_state(azurite_connection_string, container) == "available"
            async with lease.hold(KEY, ttl=SHORT):
                pass
        finally:
            await lease.aclose()

    asyncio.run(run())


def test_storage_errors_are_translated(azurite_connection_string: str, container: str) -> None:
    wrong_key = azurite_connection_string.replace("AccountKey=Eby8", "AccountKey=AAAA")
    refused_port = azurite_connection_string.split("BlobEndpoint=")[0] + "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"

    async def attempt(connection_string: str) -> None:
        lease = blob_lease(connection_string, container, retry_total=0)
        try:
            async with lease.hold(KEY, ttl=SHORT):
                pytest.fail("acquired with a broken connection")
        finally:
            await lease.aclose()

    with pytest.raises(AccessDenied, match="storage: lease"):
        asyncio.run(attempt(wrong_key))
    with pytest.raises(TransientError, match="storage: lease"):
        asyncio.run(attempt(refused_port))


# ---------------------------------------------------------------- LocalLease

_HOLDER = """
import asyncio, sys
from sso_monitor.adapters.storage.lease import LocalLease

async def main():
    async with LocalLease(sys.argv[1]).hold(sys.argv[2]):
        print("held", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main())
"""


def test_local_lease_excludes_within_a_process_and_frees_on_release_and_on_error(tmp_path: Path) -> None:
    async def run() -> None:
        lease = LocalLease(tmp_path)
        async with lease.hold(KEY):
            with pytest.raises(LeaseUnavailable, match="in this process"):
                async with lease.hold(KEY):
                    pass
            async with lease.hold("another-app"):  # other keys are free
                pass
        with pytest.raises(RuntimeError):
            async with lease.hold(KEY):
                raise RuntimeError("step failed")
        async with lease.hold(KEY):
            pass

    asyncio.run(run())


def test_local_lease_excludes_across_threads_and_instances(tmp_path: Path) -> None:
    lease = LocalLease(tmp_path)
    holding, done = threading.Event(), threading.Event()

    async def hold_in_thread() -> None:
        async with lease.hold(KEY):
            holding.set()
            await asyncio.to_thread(done.wait, 10)

    thread = threading.Thread(target=asyncio.run, args=(hold_in_thread(),))
    thread.start()
    try:
        assert holding.wait(10)

        async def attempt(candidate: LocalLease) -> None:
            async with candidate.hold(KEY):
                pass

        with pytest.raises(LeaseUnavailable):  # same instance, other thread and loop
            asyncio.run(attempt(lease))
        with pytest.raises(LeaseUnavailable, match="another process"):  # another instance: the file lock
            asyncio.run(attempt(LocalLease(tmp_path)))
    finally:
        done.set()
        thread.join(10)
    asyncio.run(attempt(LocalLease(tmp_path)))


def test_local_lease_excludes_another_process_until_it_exits_or_dies(tmp_path: Path) -> None:
    async def attempt() -> None:
        async with LocalLease(tmp_path).hold(KEY):
            pass

    for ending in ("exits", "dies"):
        with subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), KEY], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
            try:
                assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
                with pytest.raises(LeaseUnavailable, match="another process"):
                    asyncio.run(attempt())
                if ending == "exits":
                    holder.communicate("\n", timeout=10)
                else:  # killed mid-run: the OS drops its lock
                    holder.kill()
                    holder.wait(10)
            finally:
                if holder.poll() is None:
                    holder.kill()
        asyncio.run(attempt())


def test_local_lease_files_live_under_the_users_cache_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    async def run() -> None:
        async with LocalLease().hold("tenant/app"):
            pass

    asyncio.run(run())
    assert [p.name for p in (tmp_path / ".cache" / "sso-monitor" / "locks").iterdir()] == ["tenant%2Fapp.lock"]
