"""docs/sandbox.md's shell session, run exactly as written.

Every ```sh block of the page runs, in order, line by line, in one bash (no rc files)
in a scratch directory that holds what a clone has there: ``examples/`` and ``.venv/``
(links to this checkout's). The page's conventions, stated in a comment above its
first block:

- a line ending in ``&`` runs in the background; the next line waits until it has
  printed ``Ready.`` (a person reads the banner first);
- ``KEY_ID`` stands for the keyId the last ``rotate`` printed;
- a comment ``exit status N`` is the status the line must end with; 0 otherwise.

No line may print a traceback; the background job must be gone at the end (the page
stops it), and no value of the env file it wrote may appear in anything printed.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "sandbox.md"

BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
EXIT_STATUS = re.compile(r"#.*\bexit status (\d+)")
# "harbor: awaiting-confirmation (keyId X)", or the handoff's "confirm harbor --key-id X"
KEY_ID = re.compile(r"(?:awaiting-confirmation \(keyId |--key-id )([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
GUID_OR_PLACEHOLDER = re.compile(r"\bKEY_ID\b")

READY_SECONDS = 60
COMMAND_SECONDS = 120  # rotate waits for propagation: seconds, but CI machines are slow


def sh_lines(page: str) -> list[str]:
    """The commands of the page's sh blocks, in order (blank and comment-only lines dropped)."""
    lines = []
    for block in BLOCK.findall(page):
        lines += [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return lines


def command_part(line: str) -> str:
    """The line without its trailing comment (the page's comments follow two spaces or more)."""
    return re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()


class Shell:
    """One bash fed line by line; its output (and its background jobs') read by a thread."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: the cleanup below reaches its jobs too
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.transcript: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def read_until(self, pattern: str, seconds: float) -> tuple[str, re.Match[str]]:
        """The output up to and including the first line matching ``pattern``."""
        deadline = time.monotonic() + seconds
        seen: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"waited {seconds} s for {pattern!r}; printed so far:\n{''.join(self.transcript + seen)}") from None
            if line == "":
                raise AssertionError(f"bash ended before {pattern!r}:\n{''.join(self.transcript + seen)}")
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                self.transcript += seen
                return "".join(seen), match

    def run(self, line: str) -> tuple[int, str]:
        """(exit status, output) of one foreground line."""
        self.send(line)
        self.send('echo "__STATUS__ $?"')
        output, match = self.read_until(r"^__STATUS__ (\d+)$", COMMAND_SECONDS)
        return int(match[1]), output.rsplit("__STATUS__", 1)[0]

    def close(self) -> None:
        """Kill whatever is left of this test's own shell and its jobs (one process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie has ended: its parent has not reaped it yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def env_values(path: Path) -> list[str]:
    """The values of an env file's ``export NAME=VALUE`` lines."""
    values = []
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            values.append(shlex.split(line)[1].split("=", 1)[1])
    return values


def test_the_pages_shell_session_runs_as_written(tmp_path):
    lines = sh_lines(PAGE.read_text(encoding="utf-8"))
    assert any(command_part(line).endswith("&") for line in lines), "the page starts the sandbox in the background"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C.UTF-8"), "TERM": "dumb"}
    shell = Shell(tmp_path, env)
    background: int | None = None
    key_id: str | None = None
    secrets: list[str] = []
    try:
        for line in lines:
            command = command_part(line)
            if GUID_OR_PLACEHOLDER.search(command):
                assert key_id, f"{line!r}: KEY_ID before any rotate printed one"
                command = GUID_OR_PLACEHOLDER.sub(key_id, command)
            if command.endswith("&"):
                shell.send(command)
                shell.send('echo "__JOB__ $!"')
                _, job = shell.read_until(r"^__JOB__ (\d+)$", 10)
                background = int(job[1])
                shell.read_until(r"^Ready\.$", READY_SECONDS)
                env_file = tmp_path / ".sandbox" / "env"
                secrets = [value for value in env_values(env_file) if not value.startswith("/")]  # the secrets, not the config's path
                continue
            expected = int(match[1]) if (match := EXIT_STATUS.search(line)) else 0
            status, output = shell.run(command)
            assert "Traceback" not in output, f"{line!r}:\n{output}"
            assert status == expected, f"{line!r} ended with {status}, the page says {expected}:\n{output}"
            if re.search(r"\brotate\b", command):
                found = KEY_ID.findall(output)
                assert found, f"{line!r} printed no keyId:\n{output}"
                key_id = found[-1]
        assert background is not None
        # the page stops the sandbox: it says so and is gone (wait reaps it)
        deadline = time.monotonic() + 15
        while running(background) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(background), "the page left the sandbox running"
        status, output = shell.run("wait")
        assert status == 0, output
        printed = "".join(shell.transcript)
        assert "Sandbox stopped." in printed
        assert not Path(f"/proc/{background}").exists()
        assert not (tmp_path / ".sandbox" / "env").exists() and not (tmp_path / ".sandbox" / "apps.json").exists()
        assert secrets and not any(secret in printed for secret in secrets)
        assert "Traceback" not in printed
    finally:
        shell.close()  # the shell's process group: its background jobs too, had the page not stopped them
