"""Benchmark: a rotation's wall time against Entra's propagation delay, the verify rule now and before.

    .venv/bin/python bench/rotation_timing.py [--delays 0,10,60] [--repeat 3] [--out bench/reports/rotation_timing.md]

For each propagation delay the sandbox (in this process, real clock) gets a fresh
standard world whose tenant makes a new client secret work that many seconds
after addPassword (sso_sandbox.world.World.secret_works). A rotation is then
run the way the CLI and the service run one: ``MonitorService.rotate`` with the
real adapters, forced, http handoff, so one run goes all the way to ``current``
(create, store, verify, push to SmartTrace, finish). The only addition is a
counter around the token probe.

Two verify rules, interleaved in each repeat so that a slow moment of the machine
hits both:

- ``now``: the configuration's defaults (``verify`` left out of the document);
- ``before``: the rule until 2026-12: 3 successes in a row, a token request every
  5 s whatever the answer (``verify_interval``, ``verify_retry`` and
  ``verify_confirm`` all 5 s).

One rotation before the measurements warms the imports (the SDKs load with
their first request) and is not counted. The goal (docs/performance.md, goal 3):
wall - delay at most 5 s at every delay.

``measure(delays, repeat)`` answers one row per delay and rule; ``markdown(rows)``
is the report's section (it starts with "## Rotation"), which other reports embed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_SECONDS = 5.0  # wall - delay, at every delay
HANDOFF_TOKEN_SECRET = "smarttrace-acme-handoff-token"


def rules() -> dict[str, Any]:
    """The verify rules compared: name -> RotationSettings (None: the configuration's defaults)."""
    from sso_monitor.rotation.protocol import RotationSettings

    before = RotationSettings(verify_successes=3, verify_interval=5.0, verify_retry=5.0, verify_confirm=5.0, verify_deadline=300.0)
    return {"now": None, "before": before}


def describe(name: str, settings: Any) -> str:
    s = settings
    confirm = min(s.verify_confirm, s.verify_interval)
    if s.verify_retry >= s.verify_interval and confirm == s.verify_interval:
        return f"`{name}`: {s.verify_successes} successes in a row, a token request every {s.verify_interval:g} s whatever the answer"
    return (
        f"`{name}`: {s.verify_successes} successes in a row; after a failure the next token request in {s.verify_retry:g} s, "
        f"doubling up to {s.verify_interval:g} s; the confirming ones {confirm:g} s apart"
    )


class CountingProbe:
    """The real token probe, counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.count = 0

    async def probe(self, tenant_id: str, app_id: str, secret: Any) -> Any:
        self.count += 1
        return await self.inner.probe(tenant_id, app_id, secret)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Run:
    rule: str
    delay: float
    wall: float
    probes: int
    settings: Any  # the RotationSettings the run used

    @property
    def over(self) -> float:
        return self.wall - self.delay


def rotate_once(delay: float, settings: Any, rule: str) -> Run:
    """One forced rotation, http handoff, in a fresh world whose new secrets work ``delay`` s after creation."""
    from sso_monitor.adapters.storage.lease import LocalLease
    from sso_monitor.config import parse_config
    from sso_monitor.service import MonitorService
    from sso_monitor.wiring import build_rotation_deps
    from sso_sandbox import Sandbox
    from sso_sandbox.settings import monitor_document
    from sso_sandbox.testing import standard_world

    world, _ = standard_world(propagation_seconds=delay)
    with Sandbox(world) as sandbox, tempfile.TemporaryDirectory() as scratch:
        facility = world.facility("acme")
        vault = next(iter(world.vaults.values()))
        world.set_secret(vault, HANDOFF_TOKEN_SECRET, next(iter(facility.api_tokens)))
        handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": HANDOFF_TOKEN_SECRET}
        document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides={"acme": {"handoff": handoff}})
        config = parse_config(document, environ)
        probes: list[CountingProbe] = []

        def build(config: Any, **kwargs: Any) -> Any:
            deps = build_rotation_deps(config, **kwargs)
            deps.probe = CountingProbe(deps.probe)
            probes.append(deps.probe)
            return deps

        service = MonitorService(config, lease=LocalLease(Path(scratch) / "locks"), build_deps=build)
        app = config.app("acme")
        assert app is not None
        settings = settings or service.settings
        started = time.perf_counter()
        outcome = asyncio.run(service.rotate(app, force=True, settings=settings))
        wall = time.perf_counter() - started
        result = outcome.result
        if result.error is not None or result.stage != "current" or facility.key_id != result.key_id:
            raise SystemExit(f"the rotation at delay {delay:g} s ({rule}) did not finish: {result.stage} {result.error}\n" + "\n".join(result.actions))
        return Run(rule, delay, wall, sum(p.count for p in probes), settings)


def measure(delays: list[float], repeat: int) -> list[dict[str, Any]]:
    """Rotations at each delay under each rule, ``repeat`` times (interleaved); one row per
    delay and rule with the medians, the worst wall - delay and the samples."""
    compared = rules()
    rotate_once(0, None, "warm-up")
    runs: list[Run] = []
    for index in range(repeat):
        for delay in delays:
            for name, settings in compared.items():
                run = rotate_once(delay, settings, name)
                runs.append(run)
                print(f"repeat {index + 1}/{repeat} delay {delay:g} s {name}: wall {run.wall:.2f} s, {run.probes} token requests", file=sys.stderr, flush=True)
    rows = []
    for delay in delays:
        for name in compared:
            mine = [r for r in runs if r.delay == delay and r.rule == name]
            rows.append(
                {
                    "delay": delay,
                    "rule": name,
                    "rule_text": describe(name, mine[0].settings),
                    "wall": statistics.median(r.wall for r in mine),
                    "over": statistics.median(r.over for r in mine),
                    "worst_over": max(r.over for r in mine),
                    "probes": statistics.median(r.probes for r in mine),
                    "runs": len(mine),
                    "samples": [round(r.wall, 3) for r in mine],
                }
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The report's section: one table, both rules, every delay."""
    runs = max((r["runs"] for r in rows), default=0)
    texts = {r["rule"]: r["rule_text"] for r in rows}
    lines = [
        "## Rotation: wall time against Entra's propagation delay",
        "",
        f"One forced rotation (http handoff: create, store, verify, push, finish) through `MonitorService.rotate` against the sandbox,"
        f" real clock; medians of {runs} runs. Goal: wall - delay at most {GOAL_SECONDS:g} s at every delay. Produced by `bench/rotation_timing.py`.",
        "",
        *(f"- {text}" for text in texts.values()),
        "",
        "| delay (s) | rule | wall (s) | wall - delay (s) | worst wall - delay (s) | token requests | goal |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        met = "met" if r["worst_over"] <= GOAL_SECONDS else "missed"
        lines.append(f"| {r['delay']:g} | {r['rule']} | {r['wall']:.2f} | {r['over']:.2f} | {r['worst_over']:.2f} | {r['probes']:g} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", default="0,10,60", help="propagation delays in seconds, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "reports" / "rotation_timing.md"))
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",") if d.strip()]
    rows = measure(delays, args.repeat)
    header = [
        "# Rotation timing",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
        " sandbox in-process. Compare the rules within this run, not seconds across machines.",
        "",
    ]
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + markdown(rows))
    print(json.dumps(rows), flush=True)
    print(f"report written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
