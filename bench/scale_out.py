"""Benchmark: many rotations due at once, drained by 1, 2 and 4 Function App instances.

    .venv/bin/python bench/scale_out.py [--apps 200] [--workers 1,2,4] [--latency-ms 20] [--propagation-seconds 10] [--teams-check 30]

For each worker count, a fresh sandbox world (in this process) with ``--apps``
facilities whose hand-made secrets have 20 days left (rotateBeforeDays is 30, so
every app is due), each with the http handoff to SmartTrace; Azurite for the
Function App's storage (queues, blob leases, the alert table). Then
(tests/functions_host.py, ``run_scale_out``):

1. the real timer function (scheduled_run), in a process of its own, checks every
   app and queues one message per due app on sso-monitor-work;
2. ``W`` worker processes, each standing for one Function App instance, import
   function_app and run its real queue-trigger function (rotation_worker) on
   messages taken from Azurite the way the Functions host's queue listener does,
   with host.json's settings (batchSize 16 and newBatchThreshold 8 by default: up
   to 24 runs at once per instance; maxDequeueCount 5; failures retried after
   visibilityTimeout, then moved to sso-monitor-work-poison);
3. throughout, a thread of this process asks the sandbox, for every app in turn,
   whether sign-in works with the secret SmartTrace holds;
4. then the world is counted: per app the credentials created during the run (one,
   with this deployment's marker), what SmartTrace holds (the new one), the old
   secret kept (its grace period has not passed), the Key Vault stages
   (previous, current) and SmartTrace's accepted pushes (one); the work and
   poison queues.

The wall time is from the moment every worker is ready (imported, listening) to
the last message deleted; process start-up and the timer's run are outside it
(the timer's is reported apart). Rotations use the product's default verify
settings (VerifyConfig's defaults, named in the report); the sandbox adds
``--latency-ms`` to every request of every service and makes a new secret work
at Entra only ``--propagation-seconds`` after its creation.

No alert channel is configured for the measured runs (the function logs its
alerts as "no channel configured"): with one, concurrent runs deliver each
other's notices (the defect in tests/functions/test_scale_out.py), which would
make the time depend on that, not on the workers. ``--teams-check N`` runs once
more, N apps on 3 workers with a Teams channel, and reports the cards delivered.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def process_cpu(pid: int) -> Callable[[], float]:
    """A process's CPU seconds so far, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    return read


def measure(
    apps: int, workers: int, args: argparse.Namespace, connection_string: str, scratch: Path, azurite_cpu: Callable[[], float], *, teams: bool = False
) -> dict[str, Any]:
    from sso_sandbox import Sandbox
    from sso_sandbox.fleet import fleet_world
    from tests.functions_host import run_scale_out

    world = fleet_world(apps, days_left=20, propagation_seconds=args.propagation_seconds)
    with Sandbox(world) as sandbox:
        sandbox.faults.add("latency", latency_ms=args.latency_ms)
        result = run_scale_out(
            sandbox,
            connection_string,
            workers,
            scratch / f"{'teams-' if teams else ''}{apps}x{workers}",
            teams=teams,
            timeout=args.timeout,
            watcher_pause=args.watch_pause,
            other_cpu=azurite_cpu,
        )
    stats = result.workers_stats
    runs = [s["run_seconds_median"] for s in stats if s["run_seconds_median"] is not None]
    row = {
        "apps": apps,
        "workers": workers,
        "queued": result.queued,
        "timer": result.timer_seconds,
        "wall": result.drain_seconds,
        "rotated_once": result.rotated_once,
        "rotations": result.rotations,
        "duplicates": result.duplicate_credentials,
        "sign_in_failures": len(result.sign_in_failures),
        "polls": result.watcher_polls,
        "sweeps": result.watcher_sweeps,
        "every_ms": result.watcher_seconds / max(1, result.watcher_sweeps) * 1000,
        "poisoned": result.poisoned,
        "poison_left": result.poison_left,
        "work_left": result.work_left,
        "invocations": result.invocations,
        "failed_runs": result.failed_runs,
        "retried": sum(s["retried"] for s in stats),
        "per_worker": [s["invocations"] for s in stats],
        "lease_held": sum(s["outcomes"].get("lease_held", 0) for s in stats),
        "run_median": statistics.median(runs) if runs else 0.0,
        "at_once": sum(s["run_seconds_total"] for s in stats) / result.drain_seconds if result.drain_seconds else 0.0,
        "workers_cpu": result.workers_cpu_seconds,
        "parent_cpu": result.parent_cpu_seconds,
        "throttled": result.graph_throttled,
        # the workers', this process's and Azurite's CPU from "go" to the workers' exit, against every core
        "azurite_cpu": result.other_cpu_seconds,
        "busy": (result.workers_cpu_seconds + result.parent_cpu_seconds + result.other_cpu_seconds) / (result.exit_seconds * (os.cpu_count() or 1)),
        "cards": dict(result.cards),
        "problems": result.problems(),
    }
    print({k: v for k, v in row.items() if k != "problems"} | {"problems": len(row["problems"])}, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--latency-ms", type=float, default=20, help="added to every request of every sandbox service")
    parser.add_argument("--propagation-seconds", type=float, default=10, help="a new secret works at Entra this long after its creation")
    parser.add_argument("--watch-pause", type=float, default=0.1, help="seconds the watcher rests between two passes over every app")
    parser.add_argument("--teams-check", type=int, default=30, help="apps for one more run, on 3 workers, with a Teams channel (0: none)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--out", default=str(ROOT / "bench" / "reports" / "scale_out.md"))
    args = parser.parse_args()

    from tests.azurite import AzuriteProcess

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scale-out-") as temp:
        scratch = Path(temp)
        azurite = AzuriteProcess(scratch)
        service = azurite.start()
        assert azurite._process is not None
        azurite_cpu = process_cpu(azurite._process.pid)
        try:
            rows = [measure(args.apps, int(w), args, service.connection_string, scratch, azurite_cpu) for w in args.workers.split(",")]
            teams = measure(args.teams_check, 3, args, service.connection_string, scratch, azurite_cpu, teams=True) if args.teams_check else None
        finally:
            azurite.stop()
    write_report(Path(args.out), rows, teams, args, time.monotonic() - started)


def write_report(path: Path, rows: list[dict[str, Any]], teams: dict[str, Any] | None, args: argparse.Namespace, total: float) -> None:
    from sso_monitor.config.settings import VerifyConfig

    verify = VerifyConfig()
    base = next((r["wall"] for r in rows if r["workers"] == 1), None)
    lines = [
        "# Rotations at scale: one queue, several instances",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores (shared by the sandbox, Azurite and the workers),",
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}. Produced by `bench/scale_out.py` in {total / 60:.0f} min;",
        "one run per worker count.",
        "",
        f"Per run: {args.apps} apps due at once (20 days left, rotateBeforeDays 30), http handoff to SmartTrace; the real timer",
        "function queues them, then W worker processes (each a Function App instance running the real `rotation_worker`,",
        "fed from Azurite as the Functions host's queue listener is, with host.json's settings: up to 16 + 8 runs at once",
        "per instance, maxDequeueCount 5) drain the queue. A watcher thread asks the sandbox, app after app, whether",
        "sign-in works with what SmartTrace holds, from before the timer until the last worker exits, resting",
        f"{args.watch_pause:g} s between passes (so it takes little of the sandbox's CPU; an outage would last seconds at least).",
        "",
        f"Sandbox: {args.latency_ms:g} ms added to every request of every service (as bench/check_scale.py, an in-region",
        f"round trip); a new client secret works at Entra {args.propagation_seconds:g} s after its creation. Rotation: the product's",
        f"default verify ({verify.successes} token requests in a row must work; after a failure the next comes {verify.retry_seconds:g} s later,",
        f"doubling up to {verify.interval_seconds:g} s; confirmations {verify.confirm_seconds:g} s apart; {verify.deadline_seconds:g} s deadline), so one app's run",
        "is mostly waiting for propagation.",
        "Wall: from every worker listening to the last message deleted (process start and the timer excluded).",
        "",
        "| workers | wall (s) | speed-up vs 1 | apps rotated exactly once | duplicate credentials | sign-in failures (watcher) | watcher polls (each app every) | poison messages | runs (failed, retried) | messages per worker | median run (s) | runs at once (mean) | CPU workers / sandbox / Azurite (s) | CPU busy | Graph 429s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        speed = f"{base / r['wall']:.2f}x" if base else "-"
        lines.append(
            f"| {r['workers']} | {r['wall']:.1f} | {speed} | {r['rotated_once']} / {r['apps']} | {r['duplicates']} | {r['sign_in_failures']} | "
            f"{r['polls']:,} ({r['every_ms']:.0f} ms) | {r['poisoned'] + r['poison_left']} | {r['invocations']} ({r['failed_runs']}, {r['retried']}) | "
            f"{' / '.join(str(n) for n in r['per_worker'])} | {r['run_median']:.1f} | {r['at_once']:.1f} | {r['workers_cpu']:.0f} / {r['parent_cpu']:.0f} / {r['azurite_cpu']:.0f} | {r['busy']:.0%} | {r['throttled']} |"
        )
    lines += [
        "",
        "Timer runs (check every app, store the status report, queue the due ones): "
        + ", ".join(f"{r['timer']:.1f} s ({r['queued']} queued)" for r in rows)
        + ". Work queue left: "
        + ", ".join(str(r["work_left"]) for r in rows)
        + ".",
        "",
        "Reading it: an instance asks for 16 messages whenever 8 or fewer of its runs are left, so it runs 8 to 24 at",
        "once; runs at once is the sum of every run's time over the wall. A run is mostly waiting, so each instance adds",
        "about the same number of runs at once; what the speed-up loses is in the median run, which grows with the load on",
        "the one machine, and at the end, when the last messages leave some instances idle. CPU busy: the workers', the",
        "sandbox's (this process: its services and the watcher) and Azurite's CPU time from go to the workers' exit,",
        "against all cores.",
        "",
        "Checks per run: each app has exactly one new credential, with this deployment's marker; SmartTrace holds it",
        "(one accepted push); the hand-made secret is still in Entra (graceDays 7 has not passed) and its Key Vault",
        "version is `previous`, the new one `current`; no message failed, none is left on the work or poison queue.",
    ]
    problems = [p for r in rows for p in r["problems"]]
    lines += ["", f"Problems found by those checks: {len(problems)}." + ("" if not problems else " " + "; ".join(problems[:10]))]
    if teams:
        kinds = {k: v for k, v in teams["cards"].items() if k.startswith("rotation")}
        lines += [
            "",
            "## With an alert channel",
            "",
            f"{teams['apps']} apps on 3 workers with a Teams webhook as the alert channel (the sandbox's rate limit, 4 cards a second):",
            f"wall {teams['wall']:.1f} s, {teams['rotated_once']} / {teams['apps']} rotated exactly once, {teams['sign_in_failures']} sign-in failures,",
            f"cards delivered per kind {kinds} for {teams['apps']} of each: concurrent worker runs each deliver the whole alert",
            "outbox, notices of other runs included (sso_monitor/alerts/service.py, `AlertingService._deliver`), so one event",
            "reaches the channel many times and every run waits on everybody's deliveries. Shown by the strict xfail",
            "`tests/functions/test_scale_out.py::test_concurrent_worker_runs_say_each_rotation_event_once`.",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"report written to {path}")


if __name__ == "__main__":
    main()
