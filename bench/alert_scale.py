"""Benchmark: the alerting step of a timer run as the number of apps grows.

    .venv/bin/python bench/alert_scale.py [--sizes 100,1000] [--repeat 3]

For N apps, each run of ``Alerting.after_check`` (decide against the stored
state, write the outbox and the state, deliver) is measured three times in a
row against the same store:

- first: every app has a new finding (SECRET_EXPIRING; one in ten also a
  critical one): everything is said, in bundles where a channel would be
  flooded;
- quiet: nothing changed: nothing is said; this is the daily cost;
- churn: one app in ten changed (a threshold crossed, or resolved).

Stores: memory (the decision and delivery logic alone) and Azure Table
Storage on Azurite (the Function App's store; round trips on localhost). The
channels are a counting stand-in: this measures the alert engine and its
store, not Teams (whose limits the bundling respects). Store operations are
counted at the AlertStore port. The report (bench/reports/alert_scale.md)
gives medians and ratios from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TENANT = "0b1d2c3e-4f50-4617-8293-a4b5c6d7e8f9"
START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


class CountingStore:
    """An AlertStore that counts the calls reaching the real one."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = {"get": 0, "list": 0, "put": 0, "delete": 0}
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

    async def aclose(self):
        await self.inner.aclose()

    def reset(self) -> None:
        self.calls = dict.fromkeys(self.calls, 0)
        self.items_put = 0


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


async def measure(config, store, phase: str, now: datetime) -> dict:
    from sso_monitor.alerts.service import Alerting

    channels = {name: CountingChannel(name) for name in config.channels}
    counting = CountingStore(store)
    alerting = Alerting(config, counting, channels)
    results = results_for(config, phase)
    began = time.perf_counter()
    report = await alerting.after_check(results, now)
    seconds = time.perf_counter() - began
    assert report.ok, report.problems()
    return {
        "seconds": seconds,
        "notices": sum(c.notices for c in channels.values()),
        "alerts": sum(c.alerts for c in channels.values()),
        "calls": dict(counting.calls),
        "items_put": counting.items_put,
    }


def run_size(size: int, repeat: int, azurite) -> dict:
    from sso_monitor.adapters.storage.alert_store import MemoryAlertStore, TableAlertStore

    rows = {}
    for store_name in ("memory", "table"):
        per_phase: dict[str, list[dict]] = {"first": [], "quiet": [], "churn": []}
        for _ in range(repeat):
            environ = {"AzureWebJobsStorage": azurite.connection_string} if store_name == "table" else {}
            config = config_for(size, environ)
            if store_name == "table":
                from tests.azurite import forget_alert_state

                forget_alert_state(azurite.connection_string)
                store = TableAlertStore(config)
            else:
                store = MemoryAlertStore()

            async def phases(config=config, store=store):
                out = {}
                for day, phase in enumerate(("first", "quiet", "churn")):
                    out[phase] = await measure(config, store, phase, START + timedelta(days=day))
                await store.aclose()
                return out

            for phase, numbers in asyncio.run(phases()).items():
                per_phase[phase].append(numbers)
        rows[store_name] = per_phase
    return rows


def median(values):
    return statistics.median(values)


def report(results: dict, repeat: int) -> str:
    lines = [
        "# Alerting at scale",
        "",
        f"Generated by `bench/alert_scale.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}; medians of {repeat} runs. Azure Table Storage is Azurite on localhost.",
        "",
        "| apps | store | phase | seconds | per app (ms) | notices sent | alerts in them | store calls (get/list/put/delete) | items written |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for size, rows in results.items():
        for store_name, per_phase in rows.items():
            for phase, runs in per_phase.items():
                seconds = median([r["seconds"] for r in runs])
                calls = runs[-1]["calls"]
                lines.append(
                    f"| {size:,} | {store_name} | {phase} | {seconds:.3f} | {seconds / size * 1000:.2f} | {runs[-1]['notices']:,} | {runs[-1]['alerts']:,} | "
                    f"{calls['get']}/{calls['list']}/{calls['put']}/{calls['delete']} | {runs[-1]['items_put']:,} |"
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
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from tests.azurite import AzuriteProcess

    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as workdir:
        azurite = AzuriteProcess(Path(workdir))
        running = azurite.start()
        try:
            results = {size: run_size(size, args.repeat, running) for size in sizes}
        finally:
            azurite.stop()
    text = report(results, args.repeat)
    out = ROOT / "bench" / "reports" / "alert_scale.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
