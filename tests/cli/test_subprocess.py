"""What a user sees: ``python -m sso_monitor.cli.entry`` as a real process, its output as
bytes, its exit status as the shell has it. Arguments a shell can pass but a str
cannot hold (bytes that are not UTF-8), standard streams closed or a reader that
goes away, an interrupt, and the sandbox-backed commands with their secrets.

Run in a scratch directory with HOME there and no SSO_MONITOR_* / AZURE_* settings;
every configuration either cannot be loaded or points at the sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_sandbox.settings import monitor_document

from .harness import assert_subprocess_clean, issued

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SCENARIO = ROOT / "examples" / "scenario.json"


def clean_environment(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SSO_MONITOR", "AZURE_", "AzureWebJobs", "IDENTITY_", "MSI_")) and k.lower() not in ("https_proxy", "http_proxy", "all_proxy")
    }
    env.update({"HOME": str(home), "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    env.pop("PYTHONIOENCODING", None)
    env.update(extra or {})
    return env


def sso_monitor(
    argv: list[str | bytes], cwd: Path, *, stdin: bytes | int | None = b"", env: dict[str, str] | None = None, timeout: float = 60, **kwargs
) -> subprocess.CompletedProcess:
    command = [os.fsencode(sys.executable), b"-m", b"sso_monitor.cli.entry", *(os.fsencode(a) if isinstance(a, str) else a for a in argv)]
    options = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin}
    return subprocess.run(command, cwd=cwd, env=env or clean_environment(cwd), capture_output="stdout" not in kwargs, timeout=timeout, **options, **kwargs)


def text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "backslashreplace")


def verbose(argv: list[str | bytes]) -> bool:
    return any(a in ("-v", "--verbose", b"-v", b"--verbose") for a in argv)


@pytest.fixture
def scratch(tmp_path) -> Path:
    (tmp_path / "deep.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (tmp_path / "latin1.json").write_bytes('{"apps": ["café"]}'.encode("latin-1"))
    (tmp_path / "a-file").write_text("x")
    return tmp_path


# ---------------------------------------------------------------- fixed cases, no sandbox

CASES = {
    "nothing": ([], 3),
    "unknown option": (["--bogus"], 3),
    "unknown command": (["chekc"], 3),
    "missing configuration": (["check", "--config", "missing.json"], 3),
    "-v after the command": (["status", "-v", "--config", "missing.json"], 3),
    "-v before, a failure with a traceback in the debug log": (["-v", "rotate", "acme", "--config", "deep.json"], 3),
    "not UTF-8 configuration": (["status", "--config", "latin1.json"], 3),
    "deeply nested configuration": (["check", "--config", "deep.json"], 3),
    "the JSON itself, broken": (["check", "--config", '{"apps": ['], 3),
    "out-of-range until, no configuration": (["snooze", "acme", "LOGOUT_URL_MISMATCH", "--until", "9999-12-31T23:59:59-14:00"], 3),
    "100 KB reason, no configuration": (["snooze", "acme", "LOGOUT_URL_MISMATCH", "--until", "2030-01-01", "--reason", "x" * 100_000], 3),
    "non-UTF-8 byte as the command": ([b"\xff"], 3),
    "non-UTF-8 bytes as the facility": ([b"rotate", b"acme\xff\xfe", b"--config", b"missing.json"], 3),
    "non-UTF-8 bytes in a path": ([b"status", b"--config", b"/tmp/\xc3\x28.json"], 3),
    "non-UTF-8 bytes as an unknown option": ([b"confirm", b"acme", b"--key-id", b"\xe2\x82", b"--\xff"], 3),
    "control characters": (["check", "--app", "\x1b[2J\x07", "--config", "\x01\x02"], 3),
    "a scenario that is not one": (["sandbox", "--scenario", "latin1.json"], 3),
    "a demo scenario that is not one": (["demo", "--scenario", "deep.json"], 3),
    "the sandbox's state directory under a file": (["sandbox", "--scenario", str(EXAMPLE_SCENARIO), "--state-dir", "a-file/state"], 3),
    "help": (["-h"], 0),
    "version": (["--version"], 0),
    "help of a command": (["confirm", "--help"], 0),
}


@pytest.mark.parametrize("argv, expected", list(CASES.values()), ids=list(CASES))
def test_what_a_user_sees(scratch, argv, expected):
    result = sso_monitor(argv, scratch)
    out, err = text(result.stdout), text(result.stderr)
    assert_subprocess_clean(result.returncode, out, err, verbose=verbose(argv))
    assert result.returncode == expected, err
    if expected == 3:
        assert any(line.startswith(("sso-monitor:", "sso-monitor ")) for line in err.splitlines()), err[-500:]
    if verbose(argv) and "deep.json" in argv:
        assert "nested too deeply" in err


def test_nothing_to_adopt_on_a_closed_standard_input(scratch, sandbox_config):
    config, env, _ = sandbox_config
    result = sso_monitor(["adopt", "acme", "--config", str(config)], scratch, stdin=subprocess.DEVNULL, env=env)
    assert_subprocess_clean(result.returncode, text(result.stdout), text(result.stderr), verbose=False)
    assert result.returncode == 3 and "no secret value on standard input" in text(result.stderr)
    closed = sso_monitor(["adopt", "acme", "--config", str(config)], scratch, stdin=None, env=env, preexec_fn=lambda: os.close(0))
    assert_subprocess_clean(closed.returncode, text(closed.stdout), text(closed.stderr), verbose=False)
    assert closed.returncode == 3 and "no secret value on standard input" in text(closed.stderr)


@pytest.mark.parametrize("stream", [1, 2])
def test_a_closed_stream_is_not_a_crash(scratch, stream):
    """`sso-monitor ... >&-` or `2>&-`: Python has no sys.stdout (sys.stderr) at all."""
    result = subprocess.run(
        [sys.executable, "-m", "sso_monitor.cli.entry", "check", "--config", "missing.json"],
        cwd=scratch,
        env=clean_environment(scratch),
        preexec_fn=lambda: os.close(stream),
        timeout=60,
        stdout=subprocess.PIPE if stream == 2 else None,
        stderr=subprocess.PIPE if stream == 1 else None,
    )
    assert result.returncode == 3
    if stream == 1:
        assert "cannot read the configuration file" in text(result.stderr)
        assert "Traceback" not in text(result.stderr)


# ---------------------------------------------------------------- generated bytes


ARG_BYTES = st.binary(min_size=0, max_size=40).filter(lambda b: b"\x00" not in b)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    command=st.sampled_from([b"check", b"snooze", b"rotate", b"status", b"confirm", b"push", b"adopt", b"sandbox", b"demo", b"\xff", b""]),
    args=st.lists(
        st.one_of(
            ARG_BYTES,
            st.sampled_from([b"-v", b"--config", b"missing.json", b"deep.json", b"latin1.json", b"--until", b"--key-id", b"--scenario", b"--json", b"--"]),
        ),
        max_size=6,
    ),
    before=st.sampled_from([[], [b"-v"], [b"--bogus"]]),
)
def test_generated_bytes_as_a_real_process(scratch, command, args, before):
    """Whatever bytes a shell passes (all but NUL), with no usable configuration or scenario."""
    argv = [*before, command, *args]
    if command in (b"sandbox", b"demo"):
        argv += [b"--scenario", b"deep.json"]  # the last one wins: never a real sandbox
    else:
        argv += [b"--config", b"missing.json"]
    result = sso_monitor(argv, scratch)
    assert_subprocess_clean(result.returncode, text(result.stdout), text(result.stderr), verbose=b"-v" in argv)
    assert result.returncode in (0, 3), text(result.stderr)
    assert "the command failed (" not in text(result.stderr), text(result.stderr)


# ---------------------------------------------------------------- against the sandbox


@pytest.fixture
def sandbox_config(sandbox, ids, scratch):
    """A configuration file for the sandbox's acme, with a Teams channel; the environment
    a process needs for it (the monitor's sandbox secret)."""
    world = sandbox.world
    world.set_secret(world.vault(ids.vault_name), "teams-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
    document, environ = monitor_document(sandbox, facilities=["acme"])
    document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
    document["alerts"] = {"channels": ["teams"]}
    document["verify"] = {"successes": 1, "intervalSeconds": 0, "deadlineSeconds": 5}
    path = scratch / "apps.json"
    path.write_text(json.dumps(document))
    return path, clean_environment(scratch, environ), sandbox


def test_sandbox_commands_as_a_real_process_show_no_secret_and_no_traceback(scratch, sandbox_config, ids):
    config, env, sandbox = sandbox_config
    world = sandbox.world
    secret = world.facility("acme").client_secret
    runs: list[tuple[list[str], bytes, int]] = [
        (["check", "--alert"], b"", 0),
        (["-v", "check", "--json"], b"", 0),
        (["status", "-v"], b"", 0),
        (["adopt", "acme"], secret.encode() + b"\n", 0),
        (["adopt", "acme"], b"\xff\xfe\n", 3),
        (["adopt", "acme", "-v"], b"wrong" + secret[5:].encode() + b"\n", 2),
        (["rotate", "acme", "--force", "--json", "--alert"], b"", 0),
        (["status", "--json"], b"", 0),
        (["confirm", "acme", "--key-id", "00000000-0000-0000-0000-000000000000", "-v"], b"", 2),
        (["push", "acme"], b"", 3),
        (["snooze", "ACME", "LOGOUT_URL_MISMATCH", "--until", (world.now() + __import__("datetime").timedelta(days=3)).strftime("%Y-%m-%d")], b"", 0),
        (["snooze", "acme", "LOGOUT_URL_MISMATCH", "--until", "9999-12-31T23:59:59-14:00"], b"", 3),
    ]
    for argv, stdin, expected in runs:
        result = sso_monitor([*argv, "--config", str(config)], scratch, stdin=stdin, env=env)
        out, err = text(result.stdout), text(result.stderr)
        assert_subprocess_clean(result.returncode, out, err, verbose=verbose(argv), secrets=issued(world))
        assert result.returncode == expected, (argv, result.returncode, err[-1500:])


def test_a_reader_that_goes_away(scratch, sandbox_config):
    """`sso-monitor status --json | head -c0`: no "Exception ignored ... BrokenPipeError",
    no exit 120 from the interpreter's last flush: 3, the output could not be delivered."""
    config, env, _ = sandbox_config
    read, write = os.pipe()
    os.close(read)
    try:
        result = sso_monitor(["status", "--json", "--config", str(config)], scratch, env=env, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    err = text(result.stderr)
    assert "Exception ignored" not in err and "Traceback" not in err, err
    assert result.returncode == 3 and "standard output was closed" in err, (result.returncode, err)


def test_an_interrupt_exits_130_without_a_traceback(scratch, sandbox_config):
    config, env, sandbox = sandbox_config
    sandbox.faults.add("latency", service="graph", latency_ms=4_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "sso_monitor.cli.entry", "check", "--config", str(config)], cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not sandbox.world.count_requests("login"):
            time.sleep(0.05)  # a token first: the Graph reads (held 4 s) come next
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, text(err)
    assert "interrupted" in text(err)
    assert "Traceback" not in text(err) + text(out), text(err)
