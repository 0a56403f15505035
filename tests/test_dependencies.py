"""requirements.txt is the lock of pyproject.toml's [project.dependencies], and those are
what production imports. Offline: nothing here asks a package index.

- The lock is uv's output (``make lock``): every line pinned with ``==`` and hashed (pip's
  hash-checking mode needs a hash on every line once one has one), resolved for every
  Python from requires-python's floor up (3.11, 3.12 the Function App's default, 3.13).
- It holds exactly what pyproject's dependencies pull in: each direct dependency with a
  version its range allows, on each of those Pythons; every other line reached from them
  through uv's ``# via`` annotations; and, where the running venv has the locked version,
  those annotations and the lock's completeness agree with the packages' own metadata.
- Production (sso_monitor/ minus the sandbox, and function_app.py) imports exactly the
  direct dependencies; msgraph-sdk (the generated models, about 380 MB) is a test
  dependency only.

Run as a script (``python -m tests.test_dependencies --deploy-size``) it measures what the
lock weighs installed, as the Functions build installs it: that is ``make deploy-size``.
"""

from __future__ import annotations

import ast
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.txt"
MAKEFILE = ROOT / "Makefile"
PROJECT = "sso-monitor"
VIA_PYPROJECT = "sso-monitor (pyproject.toml)"
# The Pythons the Function App may run (infra/main.bicep's pythonVersion) and the remote
# build may use: CPython on Linux x86_64.
TARGET_PYTHONS = ("3.11.8", "3.12.1", "3.13.0")


def production_files() -> list[Path]:
    """What the Function App runs: function_app.py and sso_monitor/ minus the sandbox."""
    package = ROOT / "sso_monitor"
    return [ROOT / "function_app.py", *sorted(p for p in package.rglob("*.py") if "sandbox" not in p.relative_to(package).parts)]


def target_environment(python: str) -> dict[str, str]:
    return {
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "implementation_name": "cpython",
        "implementation_version": python,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def applies(marker: Marker | None, python: str, extras: set[str] = frozenset()) -> bool:
    if marker is None:
        return True
    env = target_environment(python)
    return any(marker.evaluate({**env, "extra": extra}) for extra in {"", *extras})


# ---------------------------------------------------------------------------------------------
# Reading the lock and pyproject.


@dataclass
class Pin:
    name: str  # canonical
    version: Version
    marker: Marker | None
    hashes: list[str]
    via: list[str] = field(default_factory=list)  # canonical names, or VIA_PYPROJECT
    line: str = ""


@dataclass
class Lock:
    header: list[str]
    pins: list[Pin]

    @property
    def names(self) -> set[str]:
        return {p.name for p in self.pins}

    def for_python(self, python: str) -> dict[str, Pin]:
        chosen: dict[str, Pin] = {}
        for pin in self.pins:
            if applies(pin.marker, python):
                assert pin.name not in chosen, f"{pin.name}: two lines apply on Python {python}"
                chosen[pin.name] = pin
        return chosen


def parse_lock(text: str) -> Lock:
    """uv's (and pip-compile's) format: a requirement, its ``--hash`` options on continuation
    lines, then ``# via`` comments naming what pulled it in."""
    header: list[str] = []
    pins: list[Pin] = []
    logical: list[str] = []
    in_via = False

    def finish() -> None:
        if not logical:
            return
        text = " ".join(part.rstrip("\\").strip() for part in logical)
        logical.clear()
        tokens = text.split(" --")
        requirement, options = tokens[0].strip(), [t.strip() for t in tokens[1:]]
        assert not requirement.startswith("-"), f"an option line in the lock: {text!r}"
        req = Requirement(requirement)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"not pinned with ==: {requirement!r}"
        assert not req.url and not req.extras, f"a URL or extras in the lock: {requirement!r}"
        hashes = []
        for option in options:
            assert option.startswith("hash=sha256:"), f"{req.name}: unexpected option --{option}"
            hashes.append(option.removeprefix("hash="))
        pins.append(Pin(canonicalize_name(req.name), Version(specs[0].version), req.marker, hashes, line=requirement))

    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            finish()
            in_via = False
            continue
        if logical and logical[-1].endswith("\\"):
            logical.append(line)
            continue
        stripped = line.strip()
        if stripped.startswith("#"):
            finish()
            comment = stripped.lstrip("#").strip()
            if not pins:
                header.append(comment)
            elif not raw[0].isspace():
                in_via = False
            elif comment.startswith("via"):
                rest = comment.removeprefix("via").strip()
                in_via = not rest
                if rest:
                    pins[-1].via.append(rest)
            elif in_via and comment:
                pins[-1].via.append(comment)
            continue
        finish()
        in_via = False
        assert not raw[0].isspace(), f"a continuation without a backslash before it: {raw!r}"
        logical.append(line)
    finish()
    for pin in pins:
        pin.via = [v if v == VIA_PYPROJECT else canonicalize_name(v) for v in pin.via]
    return Lock(header, pins)


@cache
def lock() -> Lock:
    return parse_lock(LOCK.read_text())


@cache
def pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def direct_dependencies() -> list[Requirement]:
    return [Requirement(r) for r in pyproject()["project"]["dependencies"]]


def direct_names() -> set[str]:
    return {canonicalize_name(r.name) for r in direct_dependencies()}


def installed_requirements(name: str) -> list[Requirement] | None:
    try:
        return [Requirement(r) for r in metadata.requires(name) or []]
    except metadata.PackageNotFoundError:
        return None


def installed_version(name: str) -> Version | None:
    try:
        return Version(metadata.version(name))
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# The checks, on a lock and a dependency list given, so the negative controls can feed them
# broken ones.


def check_generated(lock: Lock, requires_python: str, makefile: str) -> None:
    """uv wrote it with hashes, universally from requires-python's floor, as `make lock` does."""
    header = " ".join(lock.header)
    assert "autogenerated by uv" in header, "requirements.txt is generated: `make lock`, never by hand"
    command = re.search(r"uv pip compile (.*)", header)
    assert command, header
    args = command.group(1).split()
    floor = re.fullmatch(r">=\s*(\d+\.\d+)", requires_python.strip())
    assert floor, "requires-python is expected as >=X.Y"
    assert args[0] == "pyproject.toml", f"not compiled from pyproject.toml: {args}"
    for flag in ("--generate-hashes", "--universal", "--python-version"):
        assert flag in args, f"compiled without {flag}: {args}"
    assert args[args.index("--python-version") + 1] == floor.group(1), f"not resolved from requires-python's floor {floor.group(1)}: {args}"
    # The Makefile's `make lock` is the command in the header (uv leaves --quiet out of it).
    lock_args = re.search(r"^LOCK_ARGS\s*:?=\s*(.*)$", makefile, re.M)
    assert lock_args, "Makefile: LOCK_ARGS"
    make_args = [a for a in lock_args.group(1).split() if a != "--quiet"]
    assert args[1 : 1 + len(make_args)] == make_args, f"the header's command is not `make lock`'s: {args}"
    assert lock.pins, "the lock is empty"
    for pin in lock.pins:
        assert pin.hashes, f"{pin.name} has no hash: pip's hash-checking mode needs one on every line"


def check_direct_dependencies_locked(lock: Lock, deps: list[Requirement]) -> None:
    """Each direct dependency, on each target Python, has one line with a version it allows."""
    for python in TARGET_PYTHONS:
        chosen = lock.for_python(python)
        for req in deps:
            if not applies(req.marker, python):
                continue
            pin = chosen.get(canonicalize_name(req.name))
            assert pin is not None, f"{req} is not in requirements.txt for Python {python}: `make lock`"
            assert req.specifier.contains(pin.version, prereleases=True), f"requirements.txt pins {pin.name}=={pin.version}, pyproject wants {req}: `make lock`"
            for extra in req.extras:  # PyJWT[crypto]: what the extra brings is locked too
                for dep in installed_requirements(req.name) or []:
                    if dep.marker is not None and applies(dep.marker, python, {extra}) and not applies(dep.marker, python):
                        assert canonicalize_name(dep.name) in chosen, f"{req}: {dep.name} is not locked"


def check_only_pulled_in(lock: Lock, deps: list[Requirement]) -> None:
    """The lock's top level is pyproject's list, and every other line is reached from it."""
    wanted = {canonicalize_name(r.name) for r in deps}
    roots = {p.name for p in lock.pins if VIA_PYPROJECT in p.via}
    assert roots == wanted, (
        f"pyproject's dependencies and the lock's top level differ: only in pyproject "
        f"{sorted(wanted - roots)}, only in the lock {sorted(roots - wanted)}: `make lock`"
    )
    for pin in lock.pins:
        assert pin.via, f"{pin.name}: no `# via` (a hand-written line?): `make lock`"
        unknown = [v for v in pin.via if v != VIA_PYPROJECT and v not in lock.names]
        assert not unknown, f"{pin.name} is pulled in by {unknown}, which the lock does not hold"
    children: dict[str, set[str]] = {}
    for pin in lock.pins:
        for parent in pin.via:
            children.setdefault(parent, set()).add(pin.name)
    reached, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), set()) - reached:
            reached.add(child)
            todo.append(child)
    assert reached == lock.names, f"not pulled in by pyproject's dependencies: {sorted(lock.names - reached)}"


def check_metadata_agrees(lock: Lock) -> int:
    """Where the running venv holds a package at its locked version, that package's own
    requirements (those that apply on some target Python) are in the lock, and each package
    the lock says it pulls in is one it requires. Returns how many packages it could check."""
    running = ".".join(map(str, sys.version_info[:3]))
    checked = 0
    for pin in lock.pins:
        if not applies(pin.marker, running) or installed_version(pin.name) != pin.version:
            continue
        checked += 1
        requires = installed_requirements(pin.name) or []
        for req in requires:
            if any(applies(req.marker, python) for python in TARGET_PYTHONS):
                assert canonicalize_name(req.name) in lock.names, f"{pin.name} {pin.version} requires {req}; not locked"
        for child in (p for p in lock.pins if pin.name in p.via):
            assert any(canonicalize_name(r.name) == child.name for r in requires), (
                f"the lock says {pin.name} pulls in {child.name}; {pin.name} {pin.version} does not require it"
            )
    return checked


def test_the_lock_is_generated_by_uv_with_hashes_for_every_python_from_the_floor() -> None:
    check_generated(lock(), pyproject()["project"]["requires-python"], MAKEFILE.read_text())


def test_each_direct_dependency_is_locked_with_a_version_its_range_allows() -> None:
    check_direct_dependencies_locked(lock(), direct_dependencies())


def test_the_lock_holds_only_what_pyprojects_dependencies_pull_in() -> None:
    check_only_pulled_in(lock(), direct_dependencies())


def test_the_locks_annotations_and_completeness_agree_with_the_packages_metadata() -> None:
    if not check_metadata_agrees(lock()):
        pytest.skip("no locked package is installed at its locked version here (run `make install`)")


def _drop_hashes(text: str, name: str) -> str:
    """The lock with ``name``'s line unhashed, as a hand edit would leave it."""
    lines, out, skipping = text.splitlines(), [], False
    for line in lines:
        if line.startswith(f"{name}=="):
            out.append(line.removesuffix(" \\"))
            skipping = True
        elif skipping and line.strip().startswith("--hash"):
            continue
        else:
            skipping = False
            out.append(line)
    return "\n".join(out) + "\n"


def _retarget(text: str, name: str, via: str) -> str:
    """The lock with ``name``'s ``# via`` annotation replaced by ``via``."""
    lines, out, state = text.splitlines(), [], ""
    for line in lines:
        if line.startswith(f"{name}=="):
            state = "pin"
        elif state == "pin" and line.strip().startswith("# via"):
            out.append(f"    # via {via}")
            state = "via"
            continue
        elif state == "via" and line.startswith("    #   "):
            continue
        elif not line.startswith(" "):
            state = ""
        out.append(line)
    return "\n".join(out) + "\n"


HAND_COPIED = "msgraph-sdk==1.65.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via sso-monitor (pyproject.toml)\n"
STRAY = "left-over==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via gone-package\n"

# name -> (the check it must fail, a broken lock text, a broken dependency list); None: the real one.
NEGATIVE_CONTROLS = {
    "hand-written header": ("generated", lambda t: t.replace("autogenerated by uv", "written"), None),
    "one line without hashes": ("generated", lambda t: _drop_hashes(t, "tenacity"), None),
    "not universal": ("generated", lambda t: t.replace(" --universal", "", 1), None),
    "pin outside the range": ("direct", lambda t: re.sub(r"(?m)^msal==\S+", "msal==1.20.0", t), None),
    "direct dependency missing from the lock": ("direct", None, lambda d: [*d, Requirement("boto3>=1.30")]),
    "direct dependency dropped from pyproject": ("pulled_in", None, lambda d: [r for r in d if canonicalize_name(r.name) != "tenacity"]),
    "hand-copied line": ("pulled_in", lambda t: t + HAND_COPIED, None),
    "line for a package nothing needs": ("pulled_in", lambda t: t + STRAY, None),
    "line without an annotation": ("pulled_in", lambda t: _retarget(t, "pygments", "").replace("    # via \n", ""), None),
    "annotation the metadata refutes": ("metadata", lambda t: _retarget(t, "pygments", "msal"), None),
}


@pytest.mark.parametrize("control", NEGATIVE_CONTROLS)
def test_negative_controls_fail_the_check_they_target(control: str) -> None:
    check, break_lock, break_deps = NEGATIVE_CONTROLS[control]
    text = LOCK.read_text()
    broken = parse_lock(break_lock(text)) if break_lock else lock()
    deps = break_deps(direct_dependencies()) if break_deps else direct_dependencies()
    run = {
        "generated": lambda: check_generated(broken, pyproject()["project"]["requires-python"], MAKEFILE.read_text()),
        "direct": lambda: check_direct_dependencies_locked(broken, deps),
        "pulled_in": lambda: check_only_pulled_in(broken, deps),
        "metadata": lambda: check_metadata_agrees(broken) or pytest.skip("msal is not installed at its locked version"),
    }[check]
    with pytest.raises(AssertionError):
        run()


# ---------------------------------------------------------------------------------------------
# Production depends on what it imports.


def imported_modules(paths: list[Path]) -> dict[str, set[str]]:
    """Absolute imports outside the standard library and the project: module -> files."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "sso_monitor":
                    continue
                found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def distribution_files(name: str) -> tuple[str, ...]:
    return tuple(str(f) for f in metadata.files(name) or [])


@cache
def distribution_of(module: str) -> str | None:
    """The installed distribution that ships ``module``; for a namespace package shared by
    several (azure), the one that ships the subpackage."""
    parts = module.split(".")
    owners = set(packages_distributions().get(parts[0], []))
    for depth in range(2, len(parts) + 1):
        if len({canonicalize_name(d) for d in owners}) <= 1:
            break
        prefix = "/".join(parts[:depth])
        owners = {d for d in owners if any(f.startswith(prefix + "/") or f == prefix + ".py" for f in distribution_files(d))}
    names = {canonicalize_name(d) for d in owners}
    return names.pop() if len(names) == 1 else None


def test_production_imports_exactly_its_direct_dependencies() -> None:
    imports = imported_modules(production_files())
    unknown = {m: sorted(f) for m, f in imports.items() if distribution_of(m) is None}
    assert not unknown, f"imports no single installed distribution ships: {unknown}"
    used: dict[str, set[str]] = {}
    for module, files in imports.items():
        used.setdefault(distribution_of(module), set()).update(files)
    # the one optional import: `sandbox` and `demo` hand over to the sandbox's distribution
    # when it is installed, and say how to install it when it is not (cli/entry.py)
    assert sorted(used.pop("sso-monitor-sandbox", ())) in ([], [str(ROOT / "sso_monitor" / "cli" / "entry.py")], ["sso_monitor/cli/entry.py"])
    undeclared = {d: sorted(f) for d, f in used.items() if d not in direct_names()}
    assert not undeclared, f"imported by production but not in [project.dependencies]: {undeclared}"
    unused = direct_names() - set(used) - {PROJECT}
    assert not unused, f"in [project.dependencies] but never imported by production: {sorted(unused)}"


def test_msgraph_sdk_is_a_test_dependency_only() -> None:
    assert "msgraph-sdk" not in lock().names
    assert "msgraph-sdk" not in direct_names()
    dev = {canonicalize_name(Requirement(r).name) for r in pyproject()["project"]["optional-dependencies"]["dev"]}
    assert "msgraph-sdk" in dev, "tests/sandbox/test_graph*.py drive the sandbox with msgraph-sdk"
    generated = {m: f for m, f in imported_modules(production_files()).items() if m.split(".")[0] == "msgraph"}
    assert not generated, f"production imports the generated Graph client: {generated}"


# ---------------------------------------------------------------------------------------------
# `make deploy-size`: what the lock weighs installed, per distribution.


def distribution_sizes(target: Path) -> dict[str, int]:
    """Bytes per distribution in a ``pip install --target`` directory, from each RECORD
    (pip lists the .pyc files it compiled there too)."""
    sizes: dict[str, int] = {}
    root = target.resolve()
    for record in sorted(target.glob("*.dist-info/RECORD")):
        name = record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        total = 0
        with record.open(newline="") as f:
            for row in csv.reader(f):
                if not row:
                    continue
                path = (target / row[0]).resolve()
                if path.is_relative_to(root) and path.is_file():
                    total += path.stat().st_size
        sizes[canonicalize_name(name)] = total
    return sizes


def test_distribution_sizes_sums_each_record(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_bytes(b"x" * 1000)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"y" * 500)
    info = tmp_path / "Some_Pkg-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(
        "pkg/__init__.py,sha256=x,1000\npkg/__pycache__/__init__.cpython-312.pyc,,\nSome_Pkg-1.0.dist-info/RECORD,,\n../../outside,,\n"
    )
    record_size = (info / "RECORD").stat().st_size
    assert distribution_sizes(tmp_path) == {"some-pkg": 1500 + record_size}


def find_python(version: str) -> str | None:
    """DEPLOY_PYTHON, else a python<version> that runs, else pyenv's newest <version>.x."""
    candidates = [os.environ.get("DEPLOY_PYTHON"), shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv.glob(f"versions/{version}*/bin/python{version}"), reverse=True)]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and (probe.stdout.strip() == version or candidate == os.environ.get("DEPLOY_PYTHON")):
            return candidate
    return None


def deploy_size(python_version: str = "3.12", top: int = 5) -> None:
    python = find_python(python_version) or sys.executable
    with tempfile.TemporaryDirectory(prefix="sso-monitor-deploy-size-") as tmp:
        target = Path(tmp) / "site-packages"
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes", "-r", str(LOCK), "--target", str(target)],
            check=True,
        )
        version = subprocess.run([python, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        du = subprocess.run(["du", "-sm", str(target)], capture_output=True, text=True, check=True).stdout.split()[0]
        sizes = distribution_sizes(target)
        print(f"requirements.txt installed with pip --target by {version}: {du} MB (du -sm), {len(sizes)} distributions")
        for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  {size / 2**20:6.1f} MB  {name}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--deploy-size"]:
        sys.exit(f"usage: {sys.argv[0]} --deploy-size")
    deploy_size()
