"""What ships: the monitor's wheel and the Function App's files hold no sandbox, and the
monitor's CLI without the sandbox installed says how to get it."""

from __future__ import annotations

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


def test_the_function_app_deployment_ignores_the_sandbox() -> None:
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert {"sandbox", "tests", "bench"} <= ignored
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
