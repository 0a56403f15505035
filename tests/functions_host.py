"""The Functions host's queue trigger on this machine, and a scale-out run built on it.

A worker process (``python -m tests.functions_host worker``) stands for one Function
App instance: it imports function_app, finds the function whose queue trigger binds
the work queue (rotation_worker), and feeds it messages from Azurite the way the
host's queue listener does (Microsoft.Azure.WebJobs.Extensions.Storage.Queues,
configured by host.json's ``extensions.queues``):

- it asks for ``batchSize`` messages at a time (default 16) with a visibility
  timeout of 10 minutes, and asks again whenever no more than
  ``newBatchThreshold`` (default batchSize / 2) are still running, so at most
  batchSize + newBatchThreshold run at once, concurrently on one event loop as the
  Python worker runs async functions; while one runs its message is kept invisible
  (renewed at half the timeout);
- it decodes the base64 text (the trigger's default encoding) and calls the
  function with an ``azure.functions.QueueMessage`` carrying the id, body, dequeue
  count, times and pop receipt, within ``functionTimeout``;
- success (the function returns): the message is deleted; failure (it raises or
  times out): if the message's dequeue count has reached ``maxDequeueCount`` it is
  copied to ``<queue>-poison`` and deleted, else it is made visible again after
  host.json's ``visibilityTimeout``; a message dequeued more than maxDequeueCount
  times (its runs crashed) goes to the poison queue without a run;
- an empty poll backs off, doubling up to ``maxPollingInterval``.

The worker stops once the queue is empty (no message left, visible or not) and
nothing runs; the host would keep polling. The poison queue's own trigger
(poison_alert) is not run, so a poisoned message stays there to be counted.

``run_scale_out`` is the scenario of goal 5: the real timer function, run once in a
process of its own, queues every due app; ``workers`` such processes drain the
queue at once against Azurite and the sandbox (in the calling process, reached
through the host map and CA of the monitor's settings), while a thread asks the
sandbox, for every app, whether sign-in works; then the world is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST_JSON = ROOT / "host.json"
WORK_QUEUE = "sso-monitor-work"
# The host's visibility timeout for the messages it has taken (WebJobs' QueueListener: 10 minutes).
RUNNING_VISIBILITY = 600

log = logging.getLogger("functions_host")


# ---------------------------------------------------------------- host.json


def _timespan(text: str | None, default: float) -> float:
    """host.json's "hh:mm:ss" (or milliseconds as a number) in seconds."""
    if text is None:
        return default
    if isinstance(text, (int, float)):
        return float(text) / 1000
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if not match:
        raise ValueError(f"not a timespan: {text!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """host.json's extensions.queues (with the extension's defaults), and functionTimeout."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # after a failed run, before the message is visible again
    max_polling_interval: float = 60.0
    function_timeout: float | None = None

    @classmethod
    def from_host_json(cls, path: Path = HOST_JSON, **overrides: Any) -> QueueOptions:
        host = json.loads(path.read_text(encoding="utf-8"))
        queues = host.get("extensions", {}).get("queues", {})
        batch = int(queues.get("batchSize", 16))
        timeout = host.get("functionTimeout")
        options = cls(
            batch_size=batch,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch // 2)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=_timespan(queues.get("visibilityTimeout"), 0.0),
            max_polling_interval=_timespan(queues.get("maxPollingInterval"), 60.0),
            function_timeout=_timespan(timeout, 0.0) if timeout else None,
        )
        return cls(**{**asdict(options), **overrides})


# ---------------------------------------------------------------- the functions, as indexed


def queue_function(queue_name: str) -> Callable[..., Any]:
    """The user function of function_app whose queue trigger binds ``queue_name``."""
    from tests.app_functions import app_functions

    for function in app_functions():
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") == "queueTrigger" and trigger.get("queueName") == queue_name:
            return function.get_user_function()
    raise LookupError(f"no function in function_app is triggered by queue {queue_name}")


def timer_function(name: str = "scheduled_run") -> Callable[..., Any]:
    from tests.app_functions import functions_by_name

    return functions_by_name()[name].get_user_function()


# ---------------------------------------------------------------- the listener


@dataclass
class HostStats:
    invocations: int = 0
    succeeded: int = 0
    failed: int = 0  # runs that raised or timed out
    retried: int = 0  # made visible again after a failure
    poisoned: int = 0  # moved to the poison queue
    polls: int = 0
    first_dequeue: float | None = None  # time.monotonic(): one clock for every process on this machine
    last_done: float | None = None
    durations: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        durations = data.pop("durations")
        data["run_seconds_median"] = statistics.median(durations) if durations else None
        data["run_seconds_max"] = max(durations) if durations else None
        data["run_seconds_total"] = sum(durations)
        return data


class QueueHost:
    """One instance's queue listener for one queue and one function (see the module's text)."""

    def __init__(self, connection_string: str, queue_name: str, function: Callable[..., Any], options: QueueOptions) -> None:
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        def client(name: str) -> Any:
            return QueueClient.from_connection_string(
                connection_string, name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy()
            )

        self.queue = client(queue_name)
        self.poison = client(f"{queue_name}-poison")
        self.function = function
        self.options = options
        self.stats = HostStats()

    async def run(self, *, until_drained: bool = True) -> HostStats:
        running: set[asyncio.Task[None]] = set()
        delay, minimum = 0.1, 0.1
        while True:
            if len(running) <= self.options.new_batch_threshold:
                messages = await asyncio.to_thread(self._receive)
                self.stats.polls += 1
                for message in messages:
                    task = asyncio.create_task(self._process(message))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if messages:
                    delay = minimum
                    continue
                if until_drained and not running and await asyncio.to_thread(self._drained):
                    return self.stats
            if running:
                await asyncio.wait(running, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(delay)
            delay = min(delay * 2, self.options.max_polling_interval)

    def _receive(self) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            pages = self.queue.receive_messages(
                messages_per_page=self.options.batch_size, max_messages=self.options.batch_size, visibility_timeout=RUNNING_VISIBILITY
            )
            messages = list(pages)
        except ResourceNotFoundError:
            return []
        if messages and self.stats.first_dequeue is None:
            self.stats.first_dequeue = time.monotonic()
        return messages

    def _drained(self) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.queue.get_queue_properties().approximate_message_count == 0
        except ResourceNotFoundError:
            return True

    async def _process(self, message: Any) -> None:
        from azure.functions.queue import QueueMessage

        receipt = [message.pop_receipt]
        if message.dequeue_count > self.options.max_dequeue_count:  # earlier runs died with it
            await asyncio.to_thread(self._to_poison, message, receipt[0])
            return
        keep = asyncio.create_task(self._keep_invisible(message, receipt))
        started = time.monotonic()
        self.stats.invocations += 1
        ok = False
        try:
            argument = QueueMessage(
                id=message.id,
                body=message.content,
                dequeue_count=message.dequeue_count,
                expiration_time=message.expires_on,
                insertion_time=message.inserted_on,
                time_next_visible=message.next_visible_on,
                pop_receipt=message.pop_receipt,
            )
            result = self.function(argument)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, self.options.function_timeout)
            ok = True
        except Exception as exc:  # what the host records as a failed invocation
            self.stats.failed += 1
            self.stats.errors.append(f"{message.id} try {message.dequeue_count}: {type(exc).__name__}: {str(exc)[:300]}")
            log.error("function failed for message %s (try %s): %s: %s", message.id, message.dequeue_count, type(exc).__name__, exc)
        finally:
            keep.cancel()
            self.stats.durations.append(time.monotonic() - started)
        if ok:
            await asyncio.to_thread(self.queue.delete_message, message.id, receipt[0])
            self.stats.succeeded += 1
        elif message.dequeue_count >= self.options.max_dequeue_count:
            await asyncio.to_thread(self._to_poison, message, receipt[0])
        else:
            await asyncio.to_thread(self.queue.update_message, message.id, receipt[0], visibility_timeout=int(self.options.visibility_timeout))
            self.stats.retried += 1
        self.stats.last_done = time.monotonic()

    async def _keep_invisible(self, message: Any, receipt: list[str]) -> None:
        while True:
            await asyncio.sleep(RUNNING_VISIBILITY / 2)
            updated = await asyncio.to_thread(self.queue.update_message, message.id, receipt[0], visibility_timeout=RUNNING_VISIBILITY)
            receipt[0] = updated.pop_receipt

    def _to_poison(self, message: Any, receipt: str) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            self.poison.send_message(message.content)
        except ResourceNotFoundError:
            try:
                self.poison.create_queue()
            except ResourceExistsError:
                pass
            self.poison.send_message(message.content)
        self.queue.delete_message(message.id, receipt)
        self.stats.poisoned += 1
        log.error("message %s moved to %s after %s tries", message.id, self.poison.queue_name, message.dequeue_count)

    def close(self) -> None:
        self.queue.close()
        self.poison.close()


# ---------------------------------------------------------------- the processes


class _Counting(logging.Handler):
    """Counts what the function logged, by level and by a few outcomes."""

    OUTCOMES = {"lease_held": "another run holds its lease", "dropped": "dropped message", "not_retried": "not retried"}

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.levels: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("sso_monitor"):
            return
        self.levels[record.levelname] += 1
        text = record.getMessage()
        for key, needle in self.OUTCOMES.items():
            if needle in text:
                self.outcomes[key] += 1


def _logging() -> _Counting:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    # host.json: "Azure.Core": "Warning" (the SDKs' per-request lines)
    logging.getLogger("azure").setLevel(logging.WARNING)
    counting = _Counting()
    logging.getLogger().addHandler(counting)
    return counting


def _worker_main(args: argparse.Namespace) -> int:
    counting = _logging()
    overrides = json.loads(args.options) if args.options else {}
    options = QueueOptions.from_host_json(**overrides)
    host = QueueHost(os.environ["AzureWebJobsStorage"], args.queue, queue_function(args.queue), options)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    try:
        stats = asyncio.run(host.run())
    finally:
        host.close()
    print(json.dumps({**stats.summary(), "exited": time.monotonic(), "log_levels": dict(counting.levels), "outcomes": dict(counting.outcomes)}), flush=True)
    return 0


def _timer_main(args: argparse.Namespace) -> int:
    from azure.functions.timer import TimerRequest

    _logging()
    result = timer_function()(TimerRequest(past_due=False))
    if inspect.isawaitable(result):
        asyncio.run(result)  # raises ScheduledRunFailed when part of the run failed
    print(json.dumps({"ok": True}), flush=True)
    return 0


# ---------------------------------------------------------------- the scale-out run


@dataclass
class AppCount:
    """One app at the end: what the run did to it."""

    facility: str
    new_credentials: int  # created during the run (ours or not)
    new_not_ours: int  # of those, without this deployment's marker
    held_new: bool  # SmartTrace holds the new one
    old_kept: bool  # the hand-made secret is still in Entra (the grace period has not passed)
    stages: list[str]  # the Key Vault versions' stages, oldest first
    pushes_accepted: int  # SmartTrace's accepted pushes

    @property
    def rotated_once(self) -> bool:
        return (
            self.new_credentials == 1
            and self.new_not_ours == 0
            and self.held_new
            and self.old_kept
            and self.stages == ["previous", "current"]
            and self.pushes_accepted == 1
        )


@dataclass
class ScaleOutResult:
    apps: int
    workers: int
    timer_runs: int
    queued: int  # messages on the work queue after the timer
    timer_seconds: float  # the timer's process(es), start to exit: the check of every app, the report, the queueing
    drain_seconds: float  # from "go" to the last message done
    exit_seconds: float  # from "go" to the last worker's exit
    counts: list[AppCount]
    workers_stats: list[dict[str, Any]]
    watcher_polls: int
    watcher_sweeps: int
    watcher_seconds: float
    sign_in_failures: list[str]
    work_left: int
    poison_left: int
    graph_throttled: int
    cards: Counter[str]  # the Teams cards received, by their first line's kind (e.g. "rotation completed")
    parent_cpu_seconds: float  # this process (the sandbox's services, the watcher) from "go" to the workers' exit
    workers_cpu_seconds: float  # the worker processes, together
    other_cpu_seconds: float  # other_cpu's process (Azurite), when given
    logs: list[Path]

    @property
    def rotated_once(self) -> int:
        return sum(1 for c in self.counts if c.rotated_once)

    @property
    def rotations(self) -> int:
        return sum(1 for c in self.counts if c.new_credentials >= 1)

    @property
    def duplicate_credentials(self) -> int:
        return sum(max(0, c.new_credentials - 1) for c in self.counts)

    @property
    def poisoned(self) -> int:
        return sum(int(w["poisoned"]) for w in self.workers_stats)

    @property
    def invocations(self) -> int:
        return sum(int(w["invocations"]) for w in self.workers_stats)

    @property
    def failed_runs(self) -> int:
        return sum(int(w["failed"]) for w in self.workers_stats)

    def problems(self) -> list[str]:
        """What differs from "every app rotated exactly once, nothing lost, nothing poisoned, sign-in never failed"."""
        found = [f"{c.facility}: {c}" for c in self.counts if not c.rotated_once]
        if self.queued != self.apps * self.timer_runs:
            found.append(f"{self.timer_runs} timer run(s) queued {self.queued} messages for {self.apps} apps")
        if self.sign_in_failures:
            found.append(f"sign-in failed {len(self.sign_in_failures)} times: {self.sign_in_failures[:5]}")
        if self.poisoned or self.poison_left:
            found.append(f"poison: {self.poisoned} moved, {self.poison_left} on the poison queue")
        if self.work_left:
            found.append(f"{self.work_left} messages left on the work queue")
        for index, stats in enumerate(self.workers_stats):
            if stats.get("errors"):
                found.append(f"worker {index}: {stats['errors'][:3]}")
        return found


_CARD = re.compile(r"plant\d{4}: (rotation [a-z]+)")


def _card_kinds(payloads: list[dict[str, Any]]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for payload in payloads:
        match = _CARD.search(json.dumps(payload))
        kinds[match.group(1) if match else "other"] += 1
    return kinds


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def clear_queues(connection_string: str, queue_name: str = WORK_QUEUE) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    for name in (queue_name, f"{queue_name}-poison"):
        with QueueClient.from_connection_string(connection_string, name) as queue:
            try:
                queue.clear_messages()
            except ResourceNotFoundError:
                pass


def queue_length(connection_string: str, queue_name: str) -> int:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        try:
            return int(queue.get_queue_properties().approximate_message_count)
        except ResourceNotFoundError:
            return 0


def _run(command: list[str], env: dict[str, str], log_path: Path, timeout: float) -> str:
    with log_path.open("a", encoding="utf-8") as stderr:
        done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8").splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command[2:])} exited with {done.returncode}:\n{tail}")
    return done.stdout


def census(world: Any, before: dict[str, set[str]], deployment: str) -> list[AppCount]:
    """Each fleet app now, against its credentials' key ids ``before`` the run."""
    from sso_monitor.models import is_ours
    from sso_sandbox.fleet import FLEET_VAULT, credential_key_ids

    after = credential_key_ids(world)
    counts: list[AppCount] = []
    with world.lock:
        vault = world.vault(FLEET_VAULT)
        assert vault is not None
        for name, facility in world.facilities.items():
            app = world.find_app(facility.app_id)
            assert app is not None
            new = after[name] - before[name]
            names = {c.key_id.lower(): c.display_name for c in app.password_credentials}
            versions = vault.secrets[f"smarttrace-{name}"].versions
            counts.append(
                AppCount(
                    facility=name,
                    new_credentials=len(new),
                    new_not_ours=sum(1 for key in new if not is_ours(names.get(key), deployment)),
                    held_new=(facility.key_id or "").lower() in new,
                    old_kept=bool(before[name] & after[name]),
                    stages=[v.tags.get("stage", "") for v in versions],
                    pushes_accepted=sum(1 for r in facility.received if 200 <= r.status < 300),
                )
            )
    return counts


def run_scale_out(
    sandbox: Any,
    connection_string: str,
    workers: int,
    scratch: Path,
    *,
    verify: dict[str, float] | None = None,
    options: dict[str, Any] | None = None,
    timeout: float = 900.0,
    watcher_pause: float = 0.02,
    teams: bool = False,
    timer_runs: int = 1,
    other_cpu: Callable[[], float] | None = None,
) -> ScaleOutResult:
    """The timer once, then ``workers`` listener processes until the queue is drained; the world counted.

    ``sandbox``: a started Sandbox on a ``sso_sandbox.fleet`` world whose apps are due;
    ``verify``: the configuration's verify block; ``options``: QueueOptions over host.json's;
    ``teams``: alerts go to a Teams webhook of the sandbox (else no channel: they are logged);
    ``timer_runs``: how many times the timer runs before the workers start (each queues every app);
    ``other_cpu``: the CPU seconds so far of another process to count over the drain (Azurite)."""
    from sso_monitor.config import deployment_id
    from sso_sandbox.fleet import FLEET_TENANT, FLEET_VAULT, SignInWatcher, credential_key_ids, http_handoff
    from sso_sandbox.settings import monitor_document
    from tests.azurite import forget_alert_state

    world = sandbox.world
    scratch.mkdir(parents=True, exist_ok=True)
    document, environ = monitor_document(sandbox, app_overrides=http_handoff(world))
    if verify:
        document["verify"] = verify
    hook = world.add_webhook()
    if teams:  # one Teams channel for every alert; its cards are counted
        with world.lock:
            world.set_secret(world.vault(FLEET_VAULT), "teams-webhook", sandbox.endpoints.webhook_url(hook.id))
        document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
        document["alerts"] = {"channels": ["teams"]}
    config_path = scratch / "monitor.json"
    config_path.write_text(json.dumps(document), encoding="utf-8")
    home = scratch / "home"
    home.mkdir(exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SSO_MONITOR_")},
        **environ,
        "SSO_MONITOR_CONFIG": str(config_path),  # a path: 200 apps' JSON is too long for one environment variable
        "SSO_MONITOR_SCHEDULE": "0 0 6 * * *",
        "AzureWebJobsStorage": connection_string,
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
    }
    clear_queues(connection_string)
    forget_alert_state(connection_string)
    before = credential_key_ids(world)
    deployment = deployment_id(document["vaultUrl"])

    watcher = SignInWatcher(world, pause=watcher_pause).start()
    logs: list[Path] = []
    processes: list[subprocess.Popen[str]] = []
    try:
        timer_log = scratch / "timer.log"
        logs.append(timer_log)
        timer_started = time.monotonic()
        for _ in range(timer_runs):
            _run([sys.executable, "-m", "tests.functions_host", "timer"], env, timer_log, timeout)
        timer_seconds = time.monotonic() - timer_started
        queued = queue_length(connection_string, WORK_QUEUE)
        # The host backs off to maxPollingInterval (1 min) on an empty queue; that only delays
        # when a worker notices the end (it stops then), never the drain, so 1 s here.
        listener = {"max_polling_interval": 1.0, **(options or {})}
        command = [sys.executable, "-m", "tests.functions_host", "worker", "--options", json.dumps(listener)]
        for index in range(workers):
            log_path = scratch / f"worker-{index}.log"
            logs.append(log_path)
            stderr = log_path.open("w", encoding="utf-8")
            processes.append(subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True))
            stderr.close()
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a worker did not start: {line!r}; see {logs[-1].parent}")
        go = time.monotonic()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        other_before = other_cpu() if other_cpu else 0.0
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()  # communicate() closes it
        outputs = []
        deadline = go + timeout
        for process in processes:
            out, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if process.returncode != 0:
                raise RuntimeError(f"a worker exited with {process.returncode}; see the logs in {scratch}")
            outputs.append(json.loads(out.strip().splitlines()[-1]))
        ended = time.monotonic()
        cpu_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        other_seconds = (other_cpu() if other_cpu else 0.0) - other_before
    finally:
        watcher.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    counts = census(world, before, deployment)
    last_done = max((o["last_done"] for o in outputs if o["last_done"] is not None), default=go)
    return ScaleOutResult(
        apps=len(world.facilities),
        workers=workers,
        timer_runs=timer_runs,
        queued=queued,
        timer_seconds=timer_seconds,
        drain_seconds=last_done - go,
        exit_seconds=ended - go,
        counts=counts,
        workers_stats=outputs,
        watcher_polls=watcher.polls,
        watcher_sweeps=watcher.sweeps,
        watcher_seconds=watcher.seconds,
        sign_in_failures=[f"{f.facility} at {f.at:%H:%M:%S.%f} holding {f.key_id}" for f in watcher.failures],
        work_left=queue_length(connection_string, WORK_QUEUE),
        poison_left=queue_length(connection_string, f"{WORK_QUEUE}-poison"),
        graph_throttled=world.graph_budget_stats(FLEET_TENANT).throttled,
        cards=_card_kinds(hook.received),
        parent_cpu_seconds=_cpu(cpu_after[0]) - _cpu(cpu_before[0]),
        workers_cpu_seconds=_cpu(cpu_after[1]) - _cpu(cpu_before[1]),
        other_cpu_seconds=other_seconds,
        logs=logs,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.functions_host")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="one instance's queue listener; prints 'ready', waits for 'go' on stdin, drains the queue")
    worker.add_argument("--queue", default=WORK_QUEUE)
    worker.add_argument("--options", help="QueueOptions fields over host.json's, as JSON")
    sub.add_parser("timer", help="run scheduled_run once")
    args = parser.parse_args(argv)
    return _worker_main(args) if args.command == "worker" else _timer_main(args)


if __name__ == "__main__":
    sys.exit(main())
