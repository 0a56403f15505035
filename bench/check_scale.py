"""Benchmark: the check run as the number of apps grows, against a naive baseline.

    .venv/bin/python bench/check_scale.py [--sizes 10,100,1000] [--latency-ms 20] [--repeat 3] [--budgeted 1000,5000]

For each size the sandbox (in this process) gets N facilities and 20 ms of
added latency on every request to every service. Each measurement runs in a
fresh subprocess, so its peak RSS is its own:

- ours: `sso_monitor.checks.run.run_checks` with the real adapters (Graph reads
  batched 20 to a $batch, bounded concurrency);
- baseline: what the usual PowerShell scripts do, one request per app per
  resource, in sequence: the app by $filter, its service principal by
  $filter, its assignments, the Key Vault secret, a token request with it,
  and the two SmartTrace URLs.

Both do the same work per app (the app, its owners, its service principal and
assignments, the Key Vault secret, a token request, two URLs). The comparison
runs in a large tenant, whose Graph budget (8,000 resource units per 10 s) the
sandbox enforces for both.

``--budgeted`` sizes run ours alone in a small tenant (3,500 units per 10 s),
where the budget, not the machine, sets the pace: the report gives the wall
time against the budget floor (units needed / 3,500 x 10 s), the peak units
spent in any 10 s window and the 429s the sandbox had to send.

The report (bench/reports/check_scale.md) gives medians and ratios measured in
one run, plus the cold import time of function_app. Run it on an idle
machine; compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TENANT = "0b1d2c3e-4f50-4617-8293-a4b5c6d7e8f9"


# ---------------------------------------------------------------- the world


def build_world(size: int, tenant_size: str = "large"):
    from sso_sandbox.world import GRAPH_RESOURCE, AppRoleAssignment, World, new_guid

    world = World()
    now = world.now()
    world.add_tenant(TENANT, "Bench Foods", password_max_lifetime=timedelta(days=365), size=tenant_size)
    monitor = world.add_application(TENANT, "SmartTrace SSO Monitor")
    world.add_service_principal(monitor, granted_roles={GRAPH_RESOURCE: ["Application.ReadWrite.OwnedBy"]})
    world.add_password(monitor, start=now - timedelta(days=1), created=now - timedelta(days=1))
    world.monitors[TENANT] = monitor.app_id
    vault = world.add_vault("kv-bench", TENANT, access={monitor.app_id: "Key Vault Secrets Officer"})
    for index in range(size):
        name = f"plant{index:04d}"
        api = "https://api.smarttrace.ai/v1"
        app = world.add_application(
            TENANT,
            f"SmartTrace {name}",
            owners={monitor.app_id},
            web={
                "homePageUrl": f"https://{name}.smarttrace.ai",
                "logoutUrl": f"{api}/auth/callback/azure-logout/{name}",
                "redirectUris": [f"{api}/auth/callback/azure/{name}"],
                "implicitGrantSettings": {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True},
            },
        )
        # every tenth secret expires within 30 days, so the report has findings to show
        days_left = 20 if index % 10 == 0 else 200
        credential = world.add_password(
            app, display_name="SmartTrace SSO", start=now - timedelta(days=300), end=now + timedelta(days=days_left), created=now - timedelta(days=300)
        )
        sp = world.add_service_principal(app, app_role_assignment_required=True, owners={monitor.app_id})
        sp.assigned_to.append(
            AppRoleAssignment(new_guid(), new_guid(), "Group", "Staff", sp.object_id, sp.display_name, "00000000-0000-0000-0000-000000000000", now)
        )
        world.set_secret(vault, f"smarttrace-{name}", credential.secret_text, tags={"keyId": credential.key_id}, expires=credential.end)
        world.add_facility(name, TENANT, app.app_id, client_secret=credential.secret_text, key_id=credential.key_id)
    return world


# ---------------------------------------------------------------- workers (subprocesses)


def worker(kind: str, config_path: str) -> None:
    from sso_monitor.config import load_config

    config = load_config(Path(config_path))
    started = time.perf_counter()
    if kind == "ours":
        statuses = asyncio.run(_ours(config))
    else:
        statuses = _baseline(config)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024, "statuses": statuses}))


async def _ours(config) -> dict[str, int]:
    from sso_monitor.checks.run import run_checks
    from sso_monitor.wiring import build_adapters

    adapters = build_adapters(config)
    try:
        report = await run_checks(config, adapters, datetime.now(UTC))
    finally:
        await adapters.aclose()
    counts: dict[str, int] = {}
    for result in report.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def _baseline(config) -> dict[str, int]:
    """One request per app per resource, in sequence: the usual script."""
    import requests
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    from sso_monitor.adapters.entra.identity import credential_for
    from sso_monitor.adapters.http import session_with_host_map

    credential = credential_for(config, TENANT)
    token = credential.get_token(config.cloud.graph_scope).token
    ca = config.network.ca_bundle  # passed per request: REQUESTS_CA_BUNDLE would override a session's verify
    graph = requests.Session()
    graph.headers["Authorization"] = f"Bearer {token}"
    vault = SecretClient(config.vault_url, credential, verify_challenge_resource=False, connection_verify=config.network.ca_bundle)
    pages = session_with_host_map(dict(config.network.host_map), config.network.ca_bundle)
    base = config.cloud.graph_endpoint
    counts: dict[str, int] = {}
    for app in config.apps:
        problems = 0
        found = graph.get(f"{base}/applications", params={"$filter": f"appId eq '{app.app_id}'"}, timeout=30, verify=ca).json()["value"]
        if found:
            owners = graph.get(f"{base}/applications/{found[0]['id']}/owners", params={"$select": "id"}, timeout=30, verify=ca).json()["value"]
            problems += 0 if owners else 1
        sps = graph.get(f"{base}/servicePrincipals", params={"$filter": f"appId eq '{app.app_id}'"}, timeout=30, verify=ca).json()["value"]
        if sps:
            assigned = graph.get(f"{base}/servicePrincipals/{sps[0]['id']}/appRoleAssignedTo", timeout=30, verify=ca).json()["value"]
            problems += 0 if assigned else 1
        secret = vault.get_secret(app.vault_secret_name)
        try:
            ClientSecretCredential(
                app.tenant_id,
                app.app_id,
                secret.value,
                authority=config.cloud.authority,
                disable_instance_discovery=True,
                connection_verify=config.network.ca_bundle,
            ).get_token(config.cloud.graph_scope)
        except ClientAuthenticationError:
            problems += 1
        for url in (app.facility_url, app.expected_logout_url):
            problems += 0 if pages.get(url, timeout=30).ok else 1
        end = min(c["endDateTime"] for c in found[0]["passwordCredentials"]) if found else ""
        status = "warning" if end and datetime.fromisoformat(end.replace("Z", "+00:00")) < datetime.now(UTC) + timedelta(days=30) else "ok"
        status = "critical" if problems else status
        counts[status] = counts.get(status, 0) + 1
    return counts


# ---------------------------------------------------------------- the run


def measure(sandbox, kind: str, config_path: Path, environ: dict[str, str]) -> dict:
    sandbox.world.requests.clear()
    env = {**os.environ, **environ}
    output = subprocess.run([sys.executable, __file__, "--worker", kind, "--config", str(config_path)], capture_output=True, text=True, env=env, cwd=ROOT)
    if output.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{output.stderr[-3000:]}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["graph_http"] = sandbox.world.count_requests(service="graph")
    result["all_http"] = sandbox.world.count_requests()
    return result


STARTUP = {
    "import function_app": ["-c", "import function_app"],
    "sso-monitor --help": ["-c", "import sys; from sso_monitor.cli import main; sys.argv = ['sso-monitor', '--help']; main()"],
}


def startup_times(roots: dict[str, Path], repeat: int = 9) -> dict[str, dict[str, float]]:
    """Median wall time of each start-up command in each tree, interleaved so that the
    machine's load falls on all of them alike: {command: {tree label: seconds}}."""
    samples: dict[str, dict[str, list[float]]] = {command: {label: [] for label in roots} for command in STARTUP}
    for _ in range(repeat):
        for command, argv in STARTUP.items():
            for label, root in roots.items():
                env = {**os.environ, "PYTHONPATH": str(root)}
                started = time.perf_counter()
                subprocess.run([sys.executable, *argv], cwd=root, env=env, check=True, capture_output=True)
                samples[command][label].append(time.perf_counter() - started)
    return {command: {label: statistics.median(times) for label, times in by_tree.items()} for command, by_tree in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-repeat-large", type=int, default=1, help="baseline runs at sizes >= 1000 (each takes minutes)")
    parser.add_argument("--budgeted", default="1000,5000", help="sizes run in a small tenant under Graph's budget ('' for none)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "reports" / "check_scale.md"))
    parser.add_argument("--concurrency", type=int, default=0, help="network.concurrency for ours (0: the product's default)")
    parser.add_argument("--before", help="another checkout (e.g. a worktree of the commit before a change): its start-up times are reported beside ours")
    parser.add_argument("--rotation-delays", default="0,10,60", help="propagation delays for the rotation timings (bench/rotation_timing.py; '' for none)")
    parser.add_argument("--rotation-repeat", type=int, default=3)
    parser.add_argument("--worker")
    parser.add_argument("--config")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.config)
        return

    from sso_sandbox import Sandbox
    from sso_sandbox.settings import monitor_document

    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        world = build_world(size)
        with Sandbox(world) as sandbox, tempfile.TemporaryDirectory() as scratch:
            sandbox.faults.add("latency", latency_ms=args.latency_ms)
            document, environ = monitor_document(sandbox)
            # the monitor paces Graph reads to the tenant's budget: tell it the tenant is large, as the world is
            document.setdefault("network", {})["tenantSize"] = "large"
            if args.concurrency:
                document["network"]["concurrency"] = args.concurrency
            config_path = Path(scratch) / "apps.json"
            config_path.write_text(json.dumps(document))
            ours = [measure(sandbox, "ours", config_path, environ) for _ in range(args.repeat)]
            base_runs = args.repeat if size < 1000 else args.baseline_repeat_large
            baseline = [measure(sandbox, "baseline", config_path, environ) for _ in range(base_runs)]
        row = {
            "apps": size,
            "ours_wall": statistics.median(r["wall"] for r in ours),
            "base_wall": statistics.median(r["wall"] for r in baseline),
            "ours_graph_per_app": statistics.median(r["graph_http"] for r in ours) / size,
            "base_graph_per_app": statistics.median(r["graph_http"] for r in baseline) / size,
            "ours_cpu": statistics.median(r["cpu"] for r in ours),
            "ours_rss": max(r["rss_mb"] for r in ours),
            "base_rss": max(r["rss_mb"] for r in baseline),
            "ours_runs": len(ours),
            "base_runs": len(baseline),
            "ours_statuses": ours[0]["statuses"],
            "base_statuses": baseline[0]["statuses"],
        }
        row["speedup"] = row["base_wall"] / row["ours_wall"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    budgeted = [measure_budgeted(int(size), args) for size in args.budgeted.split(",") if size.strip()]
    roots = {"this tree": ROOT, **({"before": Path(args.before)} if args.before else {})}
    startup = startup_times(roots)
    rotation = ""
    if args.rotation_delays:
        import rotation_timing  # bench/rotation_timing.py, beside this file

        rotation = rotation_timing.markdown(rotation_timing.measure([float(d) for d in args.rotation_delays.split(",")], args.rotation_repeat))
    write_report(Path(args.out), rows, startup, args, budgeted, rotation)


def measure_budgeted(size: int, args) -> dict:
    """Ours in a small tenant, the sandbox enforcing Graph's budget: how close to the floor."""
    from sso_sandbox import Sandbox
    from sso_sandbox.settings import monitor_document

    world = build_world(size, tenant_size="small")
    with Sandbox(world) as sandbox, tempfile.TemporaryDirectory() as scratch:
        sandbox.faults.add("latency", latency_ms=args.latency_ms)
        document, environ = monitor_document(sandbox)
        document.setdefault("network", {})["tenantSize"] = "small"
        if args.concurrency:
            document["network"]["concurrency"] = args.concurrency
        config_path = Path(scratch) / "apps.json"
        config_path.write_text(json.dumps(document))
        run = measure(sandbox, "ours", config_path, environ)
        stats = world.graph_budget_stats(TENANT)
    floor = stats.resource_units / 3500 * 10
    row = {
        "apps": size,
        "wall": run["wall"],
        "graph_http": run["graph_http"],
        "inner": stats.requests,
        "units": stats.resource_units,
        "peak_units_10s": stats.peak_resource_units_10s,
        "throttled": stats.throttled,
        "floor": floor,
        "statuses": run["statuses"],
        "rss": run["rss_mb"],
    }
    print(json.dumps(row), flush=True)
    return row


def write_report(path: Path, rows: list[dict], startup: dict[str, dict[str, float]], args, budgeted: list[dict] | None = None, rotation: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Check run at scale",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};",
        f"sandbox in-process with {args.latency_ms:g} ms added to every request; medians of {args.repeat} runs",
        f"(baseline at 1,000 apps: {args.baseline_repeat_large} run). Produced by `bench/check_scale.py`.",
        "",
        "| apps | ours (s) | baseline (s) | baseline / ours | ours: client CPU (s) | Graph HTTP requests per app, ours | baseline | peak RSS ours (MB) | baseline (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['apps']:,} | {r['ours_wall']:.2f} | {r['base_wall']:.2f} | {r['speedup']:.1f}x | {r['ours_cpu']:.2f} | {r['ours_graph_per_app']:.3f} | {r['base_graph_per_app']:.2f} | {r['ours_rss']:.0f} | {r['base_rss']:.0f} |"
        )
    lines += [
        "",
        "Start-up (medians of 9, interleaved" + (f"; 'before' is {args.before}" if args.before else "") + "):",
        "",
        *(f"- `{command}`: " + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in by_tree.items()) for command, by_tree in startup.items()),
        "",
        "Statuses found (ours, then baseline), as a sanity check that both did the work:",
        "",
    ]
    for r in rows:
        lines.append(f"- {r['apps']:,} apps: {r['ours_statuses']} / {r['base_statuses']}")
    if budgeted:
        lines += [
            "",
            "## Under Graph's budget, in a small tenant",
            "",
            "The sandbox enforces the identity service's limit for a small tenant: 3,500 resource",
            "units per 10 s per app and tenant, each inner `$batch` request counted. The floor is the",
            "units the run needs divided by that rate; the target is at most 1.2x the floor and 0",
            "429s (the monitor paces itself at 90% of the budget).",
            "",
            "| apps | wall (s) | floor (s) | wall / floor | resource units | peak units in a 10 s window | 429s sent | Graph HTTP requests | inner requests | peak RSS (MB) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for b in budgeted:
            lines.append(
                f"| {b['apps']:,} | {b['wall']:.2f} | {b['floor']:.2f} | {b['wall'] / b['floor']:.2f}x | {b['units']:,} | {b['peak_units_10s']:,} | {b['throttled']} | {b['graph_http']:,} | {b['inner']:,} | {b['rss']:.0f} |"
            )
        lines += ["", "Statuses found: " + "; ".join(f"{b['apps']:,} apps {b['statuses']}" for b in budgeted)]
    if rotation:
        lines += ["", rotation.rstrip()]
    path.write_text("\n".join(lines) + "\n")
    print(f"report written to {path}")


if __name__ == "__main__":
    main()
