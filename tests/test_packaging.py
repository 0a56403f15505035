"""What ships: the monitor's wheel and the Function App's files hold no sandbox, and the
monitor's CLI without the sandbox installed says how to get it."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_monitors_wheel_holds_no_sandbox(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("sso_monitor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("sso_monitor-")}
    assert packages == {"sso_monitor"}, packages
    assert "sso_monitor/service.py" in names and "sso_monitor/cli/entry.py" in names
    assert not [name for name in names if "sandbox" in name or name.endswith(".json")]


def deployed_files() -> list[str]:
    """The repository's files that `func azure functionapp publish` uploads: .funcignore's
    patterns (gitignore-style names, matched against every part of a path) applied."""
    patterns = [line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [path for path in tracked if not any(fnmatch.fnmatch(part, pattern) for part in Path(path).parts for pattern in patterns)]


def test_the_function_app_deployment_holds_no_sandbox_and_no_tests() -> None:
    files = deployed_files()
    assert "function_app.py" in files and "host.json" in files and "requirements.txt" in files
    assert "sso_monitor/service.py" in files
    assert not [f for f in files if "sandbox" in f or f.startswith(("tests/", "bench/", "docs/", "infra/"))], files
    assert not (ROOT / "sso_monitor" / "sandbox").exists()


def test_demo_without_the_sandbox_says_how_to_install_it() -> None:
    code = (
        "import sys; sys.modules['sso_sandbox'] = None\n"  # as if not installed
        "from sso_monitor.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for command in (["demo"], ["sandbox"]):
        run = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert run.returncode == 3, run.stderr
        assert "pip install -e ./sandbox" in run.stderr and "Traceback" not in run.stderr
        assert run.stdout == ""
