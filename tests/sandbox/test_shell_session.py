"""`sso-monitor sandbox` from a shell, end to end, every command a process of its own.

The session of docs/sandbox.md ("From a shell"): the sandbox in the background writes
.sandbox/apps.json and .sandbox/env, the environment comes from the env file, and the
monitor's own commands run on the real clock against the sandbox's: check, rotate
harbor (through verify to the manual handoff), confirm with the keyId rotate printed,
status. Then SIGTERM (what `kill %1` sends): a clean stop, its files gone, no process
left. tests/sandbox/test_docs_snippets.py runs the page's own text; this test says
what each step must print.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from sso_monitor.cli.entry import main

ROOT = Path(__file__).resolve().parents[2]
HARBOR_APP_ID = "6d1e9b52-8c3f-4a07-b1d9-5e2f7a8c0b66"  # examples/scenario.json
TENANT = "3c5a9f0e-7d21-4b6a-9e84-0f1d2c3b4a55"
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def shell_env(home: Path) -> dict[str, str]:
    """A newcomer's environment after `. .venv/bin/activate`: nothing of the monitor's set."""
    return {"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8")}


def sourced(env_file: Path) -> dict[str, str]:
    """What `. .sandbox/env` sets, read the way a POSIX shell reads the file."""
    values = {}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            word, assignment = shlex.split(line)
            assert word == "export", line
            name, _, value = assignment.partition("=")
            values[name] = value
    return values


class Sandbox:
    """`sso-monitor sandbox ... &`: started, its banner read up to Ready., stopped by signal."""

    def __init__(self, cwd: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            ["sso-monitor", "sandbox", "--scenario", "examples/scenario.json", "--state-dir", ".sandbox", *extra],
            cwd=cwd,
            env=shell_env(cwd),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner = ""

    def wait_ready(self, seconds: float = 60) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + seconds
        lines = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip() == "Ready.":
                self.banner = "".join(lines)
                return self.banner
        self.stop(signal.SIGKILL)
        raise AssertionError(f"no Ready. from the sandbox:\n{''.join(lines)}\n{self.process.stderr.read() if self.process.stderr else ''}")

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A directory like a clone's root: examples/ is there."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


def test_check_rotate_confirm_status_against_the_running_sandbox(scratch):
    started = time.monotonic()
    sandbox = Sandbox(scratch)
    try:
        banner = sandbox.wait_ready()
        ready_seconds = time.monotonic() - started
        # the facilities with their app ids, the files, the next commands
        assert re.search(rf"^  harbor  appId {HARBOR_APP_ID}  tenant {TENANT}  SmartTrace's secret ends in (19|20) days", banner, re.M), banner
        assert "Clock        the real time, running" in banner
        for command in (". .sandbox/env", "sso-monitor --config .sandbox/apps.json check", "sso-monitor --config .sandbox/apps.json rotate harbor"):
            assert f"\n  {command}\n" in banner, banner
        state = scratch / ".sandbox"
        config = json.loads((state / "apps.json").read_text())
        assert [(a["facility"], a["appId"]) for a in config["apps"]] == [("harbor", HARBOR_APP_ID)]
        assert Path(config["network"]["caBundle"]).is_file() and config["network"]["hostMap"]["*.smarttrace.ai"].startswith("127.0.0.1:")
        assert stat.S_IMODE((state / "env").stat().st_mode) == 0o600
        settings = sourced(state / "env")
        assert settings["SSO_MONITOR_CONFIG"] == str((state / "apps.json").resolve())
        secrets = [value for name, value in settings.items() if name != "SSO_MONITOR_CONFIG"]
        assert secrets and all(secrets)
        env = {**shell_env(scratch), **settings}
        timings = {}

        def timed(name: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
            began = time.monotonic()
            result = run(argv, scratch, env)
            timings[name] = time.monotonic() - began
            return result

        check = timed("check", ["sso-monitor", "--config", ".sandbox/apps.json", "check"])
        assert check.returncode == 1, check.stdout + check.stderr  # a warning: harbor's secret ends in 20 days
        assert "harbor" in check.stdout and "SECRET_EXPIRING" in check.stdout

        rotate = timed("rotate", ["sso-monitor", "--config", ".sandbox/apps.json", "rotate", "harbor"])
        assert rotate.returncode == 0, rotate.stdout + rotate.stderr
        waiting = re.search(rf"^harbor: awaiting-confirmation\b.*\bkeyId ({GUID})", rotate.stdout, re.M)
        assert waiting, rotate.stdout  # through verify to the manual handoff
        key_id = waiting[1]
        assert re.search(rf"verify: .*{key_id}.* worked", rotate.stdout), rotate.stdout
        assert f"sso-monitor confirm harbor --key-id {key_id}" in rotate.stdout  # the command the handoff gives

        confirm = timed("confirm", ["sso-monitor", "--config", ".sandbox/apps.json", "confirm", "harbor", "--key-id", key_id])
        assert confirm.returncode == 0, confirm.stdout + confirm.stderr
        assert re.search(r"^harbor: current\b", confirm.stdout, re.M), confirm.stdout

        status = timed("status", ["sso-monitor", "--config", ".sandbox/apps.json", "status"])
        assert status.returncode == 0, status.stdout + status.stderr
        assert re.search(rf"^harbor: current\b.*\b{key_id}\b", status.stdout, re.M), status.stdout

        # SSO_MONITOR_CONFIG from the env file stands for --config; --config after the command too
        assert run(["sso-monitor", "status"], scratch, env).stdout == status.stdout
        assert run(["sso-monitor", "status", "--config", ".sandbox/apps.json"], scratch, env).stdout == status.stdout

        assert timings["rotate"] < 60, timings  # seconds, not the verify deadline: propagation is 3 s
        print(f"ready {ready_seconds:.1f} s; " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    finally:
        code, out, err = sandbox.stop()
    assert code == 0, err
    assert out.rstrip().endswith("Sandbox stopped."), out
    assert not (scratch / ".sandbox" / "apps.json").exists() and not (scratch / ".sandbox" / "env").exists()
    assert not any(secret in sandbox.banner + out + err for secret in secrets)  # values never printed
    assert "Traceback" not in err


def test_frozen_now_freezes_the_sandbox_clock_and_says_what_that_means(scratch):
    sandbox = Sandbox(scratch, "--frozen-now", "2030-01-01T00:00:00Z")
    try:
        banner = sandbox.wait_ready()
    finally:
        code, out, err = sandbox.stop(signal.SIGINT)
    assert code == 0, err
    assert "Clock        frozen at 2030-01-01T00:00:00Z (--frozen-now)" in banner and "never propagates" in banner
    assert "SmartTrace's secret ends in 20 days (2030-01-21)" in banner  # the scenario's dates count from the frozen instant


def test_frozen_now_that_is_not_a_date_is_refused_before_anything_starts(tmp_path, capsys):
    assert main(["sandbox", "--frozen-now", "next tuesday", "--state-dir", str(tmp_path / "state")]) == 3
    assert "--frozen-now 'next tuesday': expected an ISO 8601 date-time" in capsys.readouterr().err
    assert not (tmp_path / "state" / "apps.json").exists()
