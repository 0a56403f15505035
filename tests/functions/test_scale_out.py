"""Scale-out, end to end: the real timer queues every due app, several worker processes
(each a Function App instance running the real queue-trigger function, fed from Azurite
the way the Functions host is: tests/functions_host.py) drain the queue at once, and a
watcher asks the sandbox throughout whether every app's sign-in works.

No timing is asserted (a shared 2-core machine); bench/scale_out.py measures it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from sso_monitor.models import marker_name
from sso_sandbox import Sandbox
from sso_sandbox.fleet import FLEET_VAULT, SignInWatcher, credential_key_ids, fleet_world
from sso_sandbox.world import HandoffRecord
from tests.functions_host import QueueHost, QueueOptions, ScaleOutResult, census, queue_length, run_scale_out

# A verify block that proves a new secret in about a second once it has propagated (1 s here).
FAST_VERIFY = {"successes": 2, "intervalSeconds": 0.5, "deadlineSeconds": 60}
# host.json's batchSize 16 would let one worker take 16 of 30 messages at once; 4 (and a
# threshold of 2) spreads them over the three workers, as a smaller batchSize would.
SMALL_BATCHES = {"batch_size": 4, "new_batch_threshold": 2}


@pytest.fixture
def fleet(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A started sandbox with ``request.param`` due apps (20 days left; rotateBeforeDays is 30),
    1 s of propagation for new secrets and 20 ms on every request."""
    world = fleet_world(request.param, days_left=20, propagation_seconds=1)
    with Sandbox(world) as sandbox:
        sandbox.faults.add("latency", latency_ms=20)
        yield sandbox


def assert_every_app_rotated_once(result: ScaleOutResult, sandbox: Sandbox) -> None:
    assert result.problems() == []
    assert result.rotated_once == result.apps and result.duplicate_credentials == 0
    assert result.sign_in_failures == [] and result.watcher_sweeps >= 2 and result.watcher_polls >= result.apps * 2
    assert result.poisoned == 0 and result.poison_left == 0 and result.work_left == 0
    assert all(w["failed"] == 0 and w["retried"] == 0 for w in result.workers_stats)
    assert all(sandbox.world.sign_in_works(name) for name in sandbox.world.facilities)
    logs = "\n".join(path.read_text(encoding="utf-8") for path in result.logs)
    assert "rotation worker:" in logs  # the function itself ran in the workers
    assert not [s for s in sandbox.world.issued_secrets if s in logs], "a secret value reached a worker's log"


@pytest.mark.parametrize("fleet", [30], indirect=True)
def test_the_timer_fans_out_and_three_workers_rotate_every_app_exactly_once(fleet: Sandbox, azurite, tmp_path: Path) -> None:
    result = run_scale_out(fleet, azurite.connection_string, 3, tmp_path, verify=FAST_VERIFY, options=SMALL_BATCHES, timeout=100)
    assert result.queued == 30
    assert_every_app_rotated_once(result, fleet)
    assert sorted(w["invocations"] for w in result.workers_stats) != [0, 0, 30]  # the work was shared
    assert sum(w["invocations"] for w in result.workers_stats) == 30  # one run per message, no retries


@pytest.mark.parametrize("fleet", [12], indirect=True)
def test_two_messages_for_each_app_still_rotate_it_once(fleet: Sandbox, azurite, tmp_path: Path) -> None:
    # The timer ran twice before any worker (a past-due run and the scheduled one): every
    # app is queued twice, and its two messages run at the same time on different workers.
    result = run_scale_out(fleet, azurite.connection_string, 3, tmp_path, verify=FAST_VERIFY, options=SMALL_BATCHES, timeout=100, timer_runs=2)
    assert result.queued == 24
    assert_every_app_rotated_once(result, fleet)
    assert result.invocations == 24


@pytest.mark.parametrize("fleet", [6], indirect=True)
def test_concurrent_worker_runs_say_each_rotation_event_once(fleet: Sandbox, azurite, tmp_path: Path) -> None:
    fleet.services["teams"].rate_limits = None  # not about throttling: every delivery is accepted
    result = run_scale_out(fleet, azurite.connection_string, 1, tmp_path, verify=FAST_VERIFY, timeout=100, teams=True)
    assert result.rotated_once == 6  # the rotations themselves are right
    said = {kind: result.cards[kind] for kind in ("rotation started", "rotation completed")}
    assert said == {"rotation started": 6, "rotation completed": 6}  # 33 and 33 before notices were claimed (AlertStore.claim)


# ---------------------------------------------------------------- the instruments, with negative controls


def test_the_watcher_sees_a_sign_in_that_does_not_work() -> None:
    world = fleet_world(3)
    with SignInWatcher(world, pause=0.001) as watcher:
        while watcher.sweeps < 2:
            pass
        with world.lock:
            facility = world.facility("plant0001")
            assert facility is not None
            held, facility.client_secret = facility.client_secret, "not-a-secret-entra-knows"
        sweeps = watcher.sweeps
        while watcher.sweeps < sweeps + 2:
            pass
        with world.lock:
            facility.client_secret = held
    assert watcher.failures and {f.facility for f in watcher.failures} == {"plant0001"}
    assert watcher.polls >= 3 * watcher.sweeps


def test_the_census_tells_one_rotation_from_two_and_from_none() -> None:
    world = fleet_world(3)
    before = credential_key_ids(world)
    deployment = "12ca17b4"
    vault = world.vault(FLEET_VAULT)
    assert vault is not None

    def rotated(name: str, credentials: int) -> None:
        """What a finished rotation leaves, with ``credentials`` created instead of one."""
        facility = world.facility(name)
        app = world.find_app(facility.app_id) if facility else None
        assert facility is not None and app is not None
        for n in range(credentials):
            new = world.add_password(app, display_name=marker_name(deployment, f"20261206T000000Z-0000000{n}"))
        vault.secrets[f"smarttrace-{name}"].versions[-1].tags["stage"] = "previous"
        world.set_secret(vault, f"smarttrace-{name}", new.secret_text, tags={"keyId": new.key_id, "stage": "current"})
        facility.client_secret, facility.key_id = new.secret_text, new.key_id
        facility.received.append(HandoffRecord(world.now(), new.key_id, 200, "accepted"))

    rotated("plant0000", 1)
    rotated("plant0001", 2)
    counts = {c.facility: c for c in census(world, before, deployment)}
    assert counts["plant0000"].rotated_once
    assert counts["plant0001"].new_credentials == 2 and not counts["plant0001"].rotated_once
    assert counts["plant0002"].new_credentials == 0 and not counts["plant0002"].rotated_once


def test_the_host_options_are_host_json_s() -> None:
    options = QueueOptions.from_host_json()
    assert (options.max_dequeue_count, options.visibility_timeout, options.batch_size, options.new_batch_threshold) == (5, 60.0, 16, 8)
    assert options.function_timeout == 600.0


def test_the_local_host_retries_a_failure_then_moves_the_message_to_the_poison_queue(azurite) -> None:
    queue_name = "scale-out-host-check"
    calls: Counter[str] = Counter()

    async def flaky(msg) -> None:  # fails on its first try, then works
        calls[msg.get_body().decode()] += 1
        if calls[msg.get_body().decode()] == 1:
            raise RuntimeError("first try fails")

    async def broken(msg) -> None:
        calls[msg.get_body().decode()] += 1
        raise RuntimeError("always fails")

    def client(name: str) -> QueueClient:
        return QueueClient.from_connection_string(
            azurite.connection_string, name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
        )

    options = QueueOptions.from_host_json(visibility_timeout=0.0, max_dequeue_count=3, max_polling_interval=0.2)
    for name in (queue_name, f"{queue_name}-poison"):
        with client(name) as queue:
            try:
                queue.create_queue()
            except ResourceExistsError:  # empty it
                queue.clear_messages()
    with client(queue_name) as queue:
        queue.send_message(json.dumps({"n": "flaky"}))
    host = QueueHost(azurite.connection_string, queue_name, flaky, options)
    stats = asyncio.run(host.run())
    host.close()
    assert (stats.invocations, stats.failed, stats.retried, stats.succeeded, stats.poisoned) == (2, 1, 1, 1, 0)

    with client(queue_name) as queue:
        queue.send_message(json.dumps({"n": "broken"}))
    host = QueueHost(azurite.connection_string, queue_name, broken, options)
    stats = asyncio.run(host.run())
    host.close()
    assert (stats.invocations, stats.failed, stats.retried, stats.poisoned) == (3, 3, 2, 1)
    assert calls[json.dumps({"n": "broken"})] == 3  # maxDequeueCount tries, then no more
    assert queue_length(azurite.connection_string, queue_name) == 0
    with client(f"{queue_name}-poison") as poison:
        assert [m.content for m in poison.peek_messages(max_messages=5)] == [json.dumps({"n": "broken"})]
