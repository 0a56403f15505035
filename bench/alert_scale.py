"""Benchmark: the alerting step of a timer run as the number of apps grows.

    .venv/bin/python bench/alert_scale.py [--sizes 100,1000] [--events 20,200] [--repeat 3]

For N apps, each run of ``Alerting.after_check`` (decide against the stored
state, write the outbox and the state, deliver) is measured three times in a
row against the same store:

- first: every app has a new finding (SECRET_EXPIRING; one in ten also a
  critical one): everything is said, in bundles where a channel would be
  flooded. On Table Storage this run also creates the table;
- quiet: nothing changed: nothing new is said (criticals are repeated once a
  day); this is the daily cost;
- churn: one app in ten changed (a threshold crossed, or resolved).

Then ``Alerting.rotation_events`` (the timer's stuck rotations, a worker's or
the admin API's rotation events) with E events, twice each: ``events E new``
(none said before) and ``events E again`` (the same events an hour later: all
recognised as said, nothing sent). It reads the store once per event
(``store.get``), so its cost grows with the events, not with the apps.

Stores: memory (the decision and delivery logic alone) and Azure Table
Storage on Azurite (the Function App's store; round trips on localhost). The
channels are a counting stand-in: this measures the alert engine and its
store, not Teams (whose limits the bundling respects).

Two counts per run:

- port calls: calls of the AlertStore port (get/list/put/delete/claim), counted by
  CountingStore around the store;
- HTTP requests: every request the Table client's pipeline hands to its
  transport, retries included, so every request that reaches Table Storage.
  CountingTransport is put in front of the SDK's transport of the TableClient
  that TableAlertStore built (the adapter is not changed); each request is
  sorted by kind from its method and URL: GET of one entity, a query page (one
  GET of ``<table>()``: a ``list`` is one page per 1,000 rows), ``$batch`` (an
  entity group transaction of up to 100 rows), DELETE of one entity, other
  (POST /Tables to create the table, single-entity POST/PUT/MERGE), and how
  many were answered 404 (a transaction's own failure comes back inside a 202:
  the first one of a run on a missing table is not among the 404s).

The report (bench/reports/alert_scale.md) gives medians of the seconds and the
counts of the last repetition (a count that differed between repetitions is
shown with its range).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.core.pipeline.transport import HttpTransport  # noqa: E402

TENANT = "0b1d2c3e-4f50-4617-8293-a4b5c6d7e8f9"
START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
CHECK_PHASES = ("first", "quiet", "churn")
HTTP_KINDS = ("get", "query", "batch", "delete", "other")
HTTP_HEADINGS = {"get": "GET entity", "query": "query pages", "batch": "$batch", "delete": "DELETE entity", "other": "other"}


class CountingStore:
    """An AlertStore that counts the calls reaching the real one."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = {"get": 0, "list": 0, "put": 0, "delete": 0, "claim": 0}
        self.items_put = 0

    async def get(self, partition, key):
        self.calls["get"] += 1
        return await self.inner.get(partition, key)

    async def list(self, partition):
        self.calls["list"] += 1
        return await self.inner.list(partition)

    async def put(self, items):
        self.calls["put"] += 1
        self.items_put += len(items)
        return await self.inner.put(items)

    async def delete(self, partition, key):
        self.calls["delete"] += 1
        return await self.inner.delete(partition, key)

    async def claim(self, partition, key, now, until):
        self.calls["claim"] += 1
        return await self.inner.claim(partition, key, now, until)

    async def aclose(self):
        await self.inner.aclose()

    def reset(self) -> None:
        self.calls = dict.fromkeys(self.calls, 0)
        self.items_put = 0


def request_kind(method: str, url: str) -> str:
    """What a Table Storage request is, from its method and URL."""
    path = unquote(urlparse(url).path)
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last == "$batch":
        return "batch"
    if "(PartitionKey=" in last:  # one entity: <table>(PartitionKey='p',RowKey='k')
        return {"GET": "get", "DELETE": "delete"}.get(method, "other")
    if method == "GET" and last.endswith("()"):  # <table>(): a query, one page per request
        return "query"
    return "other"  # POST /Tables (create the table), POST <table> (insert one entity), ...


class CountingTransport(HttpTransport):
    """The SDK's transport, counting each request it sends (retries are requests too)."""

    def __init__(self, inner: HttpTransport) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.seen: Counter[tuple[str, str]] = Counter()  # (method, kind), to check the sorting
        self._guard = threading.Lock()  # the store's pool sends from several threads

    def send(self, request, **kwargs):
        kind = request_kind(request.method, request.url)
        response = self.inner.send(request, **kwargs)
        with self._guard:
            self.requests[kind] += 1
            self.statuses[response.status_code] += 1
            self.seen[(request.method, kind)] += 1
        return response

    def reset(self) -> None:
        with self._guard:
            self.requests.clear()
            self.statuses.clear()

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self):
        self.inner.__enter__()
        return self

    def __exit__(self, *args) -> None:
        self.inner.__exit__(*args)


def count_requests(store) -> CountingTransport:
    """Put a CountingTransport in front of the transport of the store's TableClient.

    azure-core runs a pipeline of policies (retry, signing, ...) that ends in a
    _TransportRunner holding the transport; the counter replaces the runner's
    sender, so it sees each request as it goes out on the wire."""
    pipeline = store._client._client._client._pipeline  # TableClient -> AzureTable -> PipelineClient -> Pipeline
    runner = pipeline._impl_policies[-1]
    while getattr(runner, "next", None) is not None:
        runner = runner.next
    if type(runner).__name__ != "_TransportRunner" or runner._sender is not pipeline._transport:
        raise RuntimeError(f"azure-core changed: the pipeline ends in {type(runner).__name__}, not the transport runner")
    counter = CountingTransport(runner._sender)
    runner._sender = counter
    return counter


class CountingChannel:
    kind = "bench"

    def __init__(self, name: str) -> None:
        self.name = name
        self.notices = 0
        self.alerts = 0

    async def send(self, notice) -> None:
        self.notices += 1
        self.alerts += len(notice.alerts)

    async def aclose(self) -> None:
        pass


def config_for(size: int, environ: dict[str, str]):
    from sso_monitor.config import parse_config

    apps = [{"facility": f"f{i:05d}", "tenantId": TENANT, "appId": f"{i:08x}-0000-4000-8000-000000000000"} for i in range(size)]
    document = {
        "vaultUrl": "https://kv-bench.vault.azure.net",
        "channels": {"teams": {"type": "teams", "webhookSecretName": "w"}, "ops": {"type": "teams", "webhookSecretName": "o"}},
        "alerts": {"channels": ["teams"], "operations": ["ops"]},
        "apps": apps,
    }
    return parse_config(document, environ)


def results_for(config, phase: str):
    from sso_monitor.checks.findings import Severity, finding
    from sso_monitor.checks.run import AppResult

    out = []
    for index, app in enumerate(config.apps):
        days = 20
        if phase == "churn" and index % 10 == 0:
            days = 13  # crossed 14
        findings = [finding("SECRET_EXPIRING", f"expires in {days} days", severity=Severity.WARNING, days_left=days)]
        if index % 10 == 5 and not (phase == "churn" and index % 20 == 5):
            findings.append(finding("LOGOUT_URL_MISMATCH", "logout URL differs", severity=Severity.CRITICAL))
        out.append(AppResult(app, findings))
    return out


def events_for(config, count: int):
    """``count`` distinct stuck rotations (what the timer passes to rotation_events), spread over the apps."""
    from sso_monitor.rotation.protocol import RotationEvent

    apps = config.apps
    return [
        RotationEvent(
            "stuck",
            app.facility,
            app.tenant_id,
            app.app_id,
            f"rotation stuck in verify since run {count}.{index}",
            key_id=f"{index:08x}-1111-4000-8000-000000000000",
        )
        for index, app in ((i, apps[i % len(apps)]) for i in range(count))
    ]


def phases_for(events: list[int]) -> list[tuple[str, timedelta]]:
    """(phase, when after START), in the order they run against one store."""
    out = [(phase, timedelta(days=day)) for day, phase in enumerate(CHECK_PHASES)]
    at = timedelta(days=len(CHECK_PHASES))
    for count in events:
        out.append((f"events {count} new", at))
        out.append((f"events {count} again", at + timedelta(hours=1)))  # within the repeat interval: all said already
        at += timedelta(hours=2)
    return out


async def measure(config, store, counter: CountingTransport | None, phase: str, now: datetime) -> dict:
    from sso_monitor.alerts.service import Alerting

    channels = {name: CountingChannel(name) for name in config.channels}
    counting = CountingStore(store)
    alerting = Alerting(config, counting, channels)
    if counter is not None:
        counter.reset()
    if phase in CHECK_PHASES:
        work = alerting.after_check(results_for(config, phase), now)
    else:
        work = alerting.rotation_events(events_for(config, int(phase.split()[1])), now)
    began = time.perf_counter()
    report = await work
    seconds = time.perf_counter() - began
    assert report.ok, report.problems()
    return {
        "seconds": seconds,
        "notices": sum(c.notices for c in channels.values()),
        "alerts": sum(c.alerts for c in channels.values()),
        "calls": dict(counting.calls),
        "items_put": counting.items_put,
        "http": None if counter is None else {kind: counter.requests[kind] for kind in HTTP_KINDS},
        "not_found": None if counter is None else counter.statuses[404],
        "statuses": None if counter is None else dict(counter.statuses),
    }


def run_size(size: int, events: list[int], repeat: int, azurite) -> dict:
    from sso_monitor.adapters.storage.alert_store import MemoryAlertStore, TableAlertStore

    rows = {}
    plan = phases_for(events)
    for store_name in ("memory", "table"):
        per_phase: dict[str, list[dict]] = {phase: [] for phase, _ in plan}
        for _ in range(repeat):
            environ = {"AzureWebJobsStorage": azurite.connection_string} if store_name == "table" else {}
            config = config_for(size, environ)
            counter = None
            if store_name == "table":
                from tests.azurite import forget_alert_state

                forget_alert_state(azurite.connection_string)
                store = TableAlertStore(config)
                counter = count_requests(store)
            else:
                store = MemoryAlertStore()

            async def phases(config=config, store=store, counter=counter):
                out = {}
                for phase, after in plan:
                    out[phase] = await measure(config, store, counter, phase, START + after)
                await store.aclose()
                return out

            for phase, numbers in asyncio.run(phases()).items():
                per_phase[phase].append(numbers)
            if counter is not None:
                print(f"{size} apps: requests by (method, kind): {dict(sorted(counter.seen.items()))}", file=sys.stderr)
        rows[store_name] = per_phase
    return rows


def median(values):
    return statistics.median(values)


def count(runs: list[dict], pick) -> str:
    """The last repetition's count; with the range when the repetitions differed."""
    values = [pick(r) for r in runs]
    text = f"{values[-1]:,}"
    if min(values) != max(values):
        text += f" ({min(values):,}-{max(values):,})"
    return text


def report(results: dict, events: list[int], repeat: int) -> str:
    lines = [
        "# Alerting at scale",
        "",
        f"Generated by `bench/alert_scale.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}; seconds are medians of {repeat} runs, counts are the last run's. Azure Table Storage is Azurite on localhost.",
        "",
        "Phases: `first`, `quiet`, `churn` are `Alerting.after_check` over all apps (the first one also creates the table); "
        f"`events E new` / `events E again` are `Alerting.rotation_events` with E stuck rotations (E = {', '.join(str(e) for e in events)}), "
        "first unsaid, then the same ones an hour later (already said: nothing sent).",
        "",
        "Port calls are calls of the AlertStore port; HTTP requests are what reached Table Storage (counted at the SDK's transport, retries included).",
        "",
        "| apps | store | phase | seconds | ms per app (per event) | notices sent | alerts in them | port calls (get/list/put/delete/claim) | items written | HTTP requests |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for size, rows in results.items():
        for store_name, per_phase in rows.items():
            for phase, runs in per_phase.items():
                seconds = median([r["seconds"] for r in runs])
                per = size if phase in CHECK_PHASES else int(phase.split()[1])
                calls = runs[-1]["calls"]
                http = "-" if runs[-1]["http"] is None else count(runs, lambda r: sum(r["http"].values()))
                lines.append(
                    f"| {size:,} | {store_name} | {phase} | {seconds:.3f} | {seconds / per * 1000:.2f} | {runs[-1]['notices']:,} | {runs[-1]['alerts']:,} | "
                    f"{calls['get']}/{calls['list']}/{calls['put']}/{calls['delete']}/{calls['claim']} | {runs[-1]['items_put']:,} | {http} |"
                )
    lines += [
        "",
        "## HTTP requests to Table Storage, by kind",
        "",
        "GET entity: one entity read (`store.get`). Query pages: GET `<table>()` with a filter on the partition; a `store.list` is one request per "
        "page of at most 1,000 rows (Azure Table's page size), so one per partition until a partition holds more than 1,000 rows. "
        "$batch: one entity group transaction (up to 100 upserts of one partition); a `store.put` is one per 100 rows per partition, "
        "none for an empty put. DELETE entity: one per `store.delete`. Other: POST /Tables (creating the table) and single-entity writes. "
        "404: requests answered 404 (lists before the table exists, reads of an entity that is not there: each new rotation event). "
        "On the first run the first transaction finds no table: it is answered 202 with the 404 inside, then POST /Tables, then the same transaction "
        "again, so the first run has one $batch and one other request more than its writes need.",
        "",
        "| apps | phase | port calls (get/list/put/delete/claim) | items written | HTTP total | "
        + " | ".join(HTTP_HEADINGS[kind] for kind in HTTP_KINDS)
        + " | of them 404 |",
        "|---:|---|---|---:|---:|" + "---:|" * len(HTTP_KINDS) + "---:|",
    ]
    for size, rows in results.items():
        for phase, runs in rows["table"].items():
            calls = runs[-1]["calls"]
            by_kind = " | ".join(count(runs, lambda r, kind=kind: r["http"][kind]) for kind in HTTP_KINDS)
            lines.append(
                f"| {size:,} | {phase} | {calls['get']}/{calls['list']}/{calls['put']}/{calls['delete']}/{calls['claim']} | {runs[-1]['items_put']:,} | "
                f"{count(runs, lambda r: sum(r['http'].values()))} | {by_kind} | {count(runs, lambda r: r['not_found'])} |"
            )
    lines += ["", "Ratios (median seconds, same run):", ""]
    for size, rows in results.items():
        table_first = median([r["seconds"] for r in rows["table"]["first"]])
        table_quiet = median([r["seconds"] for r in rows["table"]["quiet"]])
        memory_quiet = median([r["seconds"] for r in rows["memory"]["quiet"]])
        lines.append(
            f"- {size:,} apps: table/memory on a quiet day {table_quiet / memory_quiet:.1f}x; first run/quiet day on Table {table_first / table_quiet:.1f}x"
        )
    if len(results) > 1:
        small, large = min(results), max(results)
        grow = median([r["seconds"] for r in results[large]["table"]["quiet"]]) / median([r["seconds"] for r in results[small]["table"]["quiet"]])
        lines.append(f"- quiet day on Table, {large:,} apps / {small:,} apps: {grow:.1f}x for {large / small:.0f}x the apps")
        quiet = {size: sum(results[size]["table"]["quiet"][-1]["http"].values()) for size in (small, large)}
        lines.append(f"- HTTP requests on a quiet day, {large:,} apps / {small:,} apps: {quiet[large]:,} / {quiet[small]:,}")
    if len(events) > 1:
        few, many = min(events), max(events)
        for size, rows in results.items():
            gets = {e: rows["table"][f"events {e} new"][-1]["http"]["get"] for e in (few, many)}
            lines.append(f"- {size:,} apps: entity GETs for rotation events, {many} events / {few} events: {gets[many]:,} / {gets[few]:,}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--events", default="20,200", help="rotation events per events phase, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "reports" / "alert_scale.md")
    args = parser.parse_args()
    from tests.azurite import AzuriteProcess

    sizes = [int(s) for s in args.sizes.split(",")]
    events = [int(e) for e in args.events.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        azurite = AzuriteProcess(Path(workdir))
        running = azurite.start()
        try:
            results = {size: run_size(size, events, args.repeat, running) for size in sizes}
        finally:
            azurite.stop()
    text = report(results, events, args.repeat)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
