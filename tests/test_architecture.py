"""The layout is the architecture (docs/architecture.md), checked on every import.

Every ``import`` in the package counts, at module level or inside a function: a lazy
import is still a dependency. Layers, bottom up:

    base      sso_monitor (version), models, errors, redact, config
    domain    checks  <  rotation, alerts        (pure decisions, ports, the protocol)
    adapters  adapters/<system>/                 (implement the ports on the SDKs)
    wiring    wiring.py                          (the one place adapters are built)
    service   service.py                         (the use cases every entry point shares)
    entry     functions/, cli/, function_app.py  (HTTP, timer, queue, terminal shapes)

A module imports its own layer or lower ones, with three refinements: the domain never
imports adapters; adapters import only the domain's ports, its record formats and its
rendering (never a decision or the protocol); entry points never import adapters (they
ask wiring or the service). The sandbox (sandbox/, package sso_sandbox) is another
distribution: the monitor names it once, in cli/entry.py, and runs without it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sso_monitor"
SANDBOX = ROOT / "sandbox" / "sso_sandbox"

BASE, DOMAIN, ADAPTERS, WIRING, SERVICE, ENTRY = range(6)
# What of the domain adapters may use: the ports, the record formats, the rendering.
FOR_ADAPTERS = ("checks.ports", "checks.findings", "rotation.ports", "rotation.state", "alerts.ports", "alerts.render")
# Within the domain: checks first; the rotation and the alerts build on the checks,
# never on each other.
DOMAIN_ORDER = {"checks": 0, "rotation": 1, "alerts": 1}


def module_name(path: Path, root: Path, package: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((package, *parts))


def modules(root: Path, package: str) -> dict[str, Path]:
    return {module_name(p, root, package): p for p in sorted(root.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph(root: Path = PACKAGE, package: str = "sso_monitor") -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    known = modules(root, package)
    return {name: {t for t in imports_of(name, path) if t in known and t != name} for name, path in known.items()}


def layer(module: str) -> int:
    rest = module.removeprefix("sso_monitor").lstrip(".")
    top = rest.split(".")[0]
    if top in ("", "models", "errors", "redact", "config"):
        return BASE
    if top in DOMAIN_ORDER:
        return DOMAIN
    return {"adapters": ADAPTERS, "wiring": WIRING, "service": SERVICE, "functions": ENTRY, "cli": ENTRY}[top]


def local(module: str) -> str:
    return module.removeprefix("sso_monitor.")


def violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            a, b = layer(source), layer(target)
            why = None
            if b > a:
                why = "imports a higher layer"
            elif a == DOMAIN and b == DOMAIN:
                sa, sb = local(source).split(".")[0], local(target).split(".")[0]
                if sa != sb and DOMAIN_ORDER[sb] >= DOMAIN_ORDER[sa]:
                    why = f"{sa} may not import {sb}"
            elif a == ADAPTERS and b == DOMAIN and local(target) not in FOR_ADAPTERS:
                why = "an adapter imports a domain decision (only ports, record formats, rendering)"
            elif a == ENTRY and b == ADAPTERS:
                why = "an entry point imports an adapter (ask wiring or the service)"
            if why:
                found.append(f"{local(source)} -> {local(target)}: {why}")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_every_import_points_down() -> None:
    assert violations(graph()) == []


def test_every_module_has_a_layer() -> None:
    for name in modules(PACKAGE, "sso_monitor"):
        layer(name)  # KeyError names a top-level module the architecture does not place


def test_the_checks_catch_what_they_are_for() -> None:
    """Negative controls: a cycle, an upward import, an adapter reaching into the
    protocol, an entry point reaching an adapter, the domain importing sideways."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    bad = {
        "sso_monitor.models": {"sso_monitor.service"},
        "sso_monitor.adapters.graph.writer": {"sso_monitor.rotation.protocol", "sso_monitor.rotation.ports"},
        "sso_monitor.functions.api": {"sso_monitor.adapters.storage.lease", "sso_monitor.wiring"},
        "sso_monitor.checks.run": {"sso_monitor.rotation.state"},
        "sso_monitor.rotation.protocol": {"sso_monitor.alerts.render", "sso_monitor.checks.decisions"},
        "sso_monitor.checks.decisions": {"sso_monitor.adapters.graph.reader"},
    }
    assert violations(bad) == [
        "adapters.graph.writer -> rotation.protocol: an adapter imports a domain decision (only ports, record formats, rendering)",
        "checks.decisions -> adapters.graph.reader: imports a higher layer",
        "checks.run -> rotation.state: checks may not import rotation",
        "functions.api -> adapters.storage.lease: an entry point imports an adapter (ask wiring or the service)",
        "models -> service: imports a higher layer",
        "rotation.protocol -> alerts.render: rotation may not import alerts",
    ]


def test_the_function_app_imports_only_entry_points() -> None:
    imported = {t for t in imports_of("function_app", ROOT / "function_app.py") if t.startswith("sso_monitor.")}
    assert imported and all(layer(t) == ENTRY or t == "sso_monitor.functions" for t in imported if t in modules(PACKAGE, "sso_monitor")), imported


def test_the_sandbox_is_another_distribution() -> None:
    naming = defaultdict(list)
    for name, path in modules(PACKAGE, "sso_monitor").items():
        for target in imports_of(name, path):
            if target.split(".")[0] == "sso_sandbox":
                naming[local(name)].append(target)
    assert set(naming) == {"cli.entry"}, dict(naming)  # the guarded hand-over of `sandbox` and `demo`
    # The simulated cloud does not know the monitor's code; only the demo runs it.
    uses_monitor = sorted(
        local_name
        for local_name, path in modules(SANDBOX, "sso_sandbox").items()
        if any(t.split(".")[0] == "sso_monitor" for t in imports_of(local_name, path))
    )
    assert uses_monitor == ["sso_sandbox.demo"], uses_monitor
