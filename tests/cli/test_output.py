"""Output that fits scripts and people: one JSON style for every command's --json (the
admin API's, service.to_json), each app's expiry as fields, fix texts that name the
real facility, one message and exit 3 without any credential, a table on a terminal
(its width, NO_COLOR) and plain lines when piped, -v anywhere, help for every option,
and a progress line while a rotation waits for propagation (on a terminal only)."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import select
import subprocess
import sys
from datetime import timedelta

import pytest

import sso_monitor.cli.entry as cli
from sso_monitor.cli.check import check_and_report
from sso_monitor.cli.rotate import rotate_command
from sso_monitor.config import parse_config
from sso_sandbox.clock import SimulatedClock
from sso_sandbox.settings import monitor_document
from tests.functions.json_style import assert_style, style_problems

from .harness import assert_clean, issued, loopback_only, run_cli
from .test_subprocess import clean_environment

pytestmark = pytest.mark.usefixtures("no_secret_in_logs")

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # any SGR sequence: colour, bold, italic, reset
BOX = set("┏┳┓┃┡╇┩│├┼┤└┴┘━─")
HANDOFF_TOKEN = "smarttrace-handoff-token"


@pytest.fixture
def acme(sandbox, ids, tmp_path, monkeypatch):
    """acme, 10 days from the end of its secret (SECRET_EXPIRING with details), with
    SmartTrace's http handoff (push works); run(*args) runs the CLI on that configuration."""
    world = sandbox.world
    world.find_app(ids.smarttrace_app_id).credential(ids.smarttrace_key_id).end = world.now() + timedelta(days=10)
    facility = world.facility("acme")
    world.set_secret(world.vault(ids.vault_name), HANDOFF_TOKEN, next(iter(facility.api_tokens)))
    handoff = {"mode": "http", "url": f"{facility.api_base}/integrations/acme/azure-ad/client-secret", "tokenSecretName": HANDOFF_TOKEN}
    document, environ = monitor_document(sandbox, facilities=["acme"], app_overrides={"acme": {"handoff": handoff}})
    document["verify"] = {"successes": 1, "intervalSeconds": 0, "deadlineSeconds": 5}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(document))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    for key in ("AzureWebJobsStorage", "SSO_MONITOR_CONFIG", "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # the local lease's lock files
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: bytes = b""):
        result = run_cli([*args, "--config", str(path)], stdin=stdin)
        assert_clean(result, secrets=issued(world))
        return result

    run.path = path  # type: ignore[attr-defined]
    run.config = lambda: parse_config(document, environ)  # type: ignore[attr-defined]
    return run


# ---------------------------------------------------------------- JSON style across commands


def test_every_command_answers_json_in_one_style(acme, sandbox, ids, tmp_path):
    secret = sandbox.world.facility("acme").client_secret
    until = (sandbox.world.now() + timedelta(days=5)).strftime("%Y-%m-%d")
    outputs = {}
    for name, args, stdin in [
        ("check", ["check"], b""),
        ("status", ["status"], b""),
        ("rotate --dry-run", ["rotate", "acme", "--dry-run", "--force"], b""),
        ("adopt", ["adopt", "acme"], secret.encode() + b"\n"),
        ("push", ["push", "acme"], b""),
        ("snooze", ["snooze", "acme", "SECRET_EXPIRING", "--until", until, "--alert-state", str(tmp_path / "alerts.json")], b""),
        ("rotate", ["rotate", "acme", "--force"], b""),
    ]:
        run = acme(*args, "--json", stdin=stdin)
        assert run.code in (0, 1), (name, run)
        outputs[name] = json.loads(run.out)
    for name, document in outputs.items():
        assert not style_problems(document), (name, style_problems(document)[:5])
    # the shapes scripts read
    assert outputs["status"]["apps"][0]["currentExpires"].endswith("Z")  # was "2027-02-09 06:08:23+00:00"
    assert outputs["rotate"]["keyId"] and outputs["rotate"]["stage"] == "current" and outputs["rotate"]["events"][0]["tenantId"] == ids.tenant_id
    assert outputs["push"]["keyId"] == ids.smarttrace_key_id
    assert outputs["snooze"]["until"] == f"{until}T00:00:00Z" and outputs["snooze"]["code"] == "SECRET_EXPIRING"


def test_check_json_carries_each_apps_expiry_as_fields(acme, ids):
    run = acme("check", "--json")
    report = json.loads(run.out)
    (app,) = report["apps"]
    expiring = next(f for f in app["findings"] if f["code"] == "SECRET_EXPIRING")
    assert app["daysLeft"] in (9, 10) and app["daysLeft"] == expiring["details"]["daysLeft"]
    assert app["secretExpires"].endswith("Z") and app["secretExpires"][:10] in expiring["message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["generatedAt"])


def test_confirm_answers_json_in_the_style(acme, sandbox, ids, tmp_path):
    """A manual handoff's rotation, then its confirmation, both as JSON."""
    document = json.loads(acme.path.read_text())
    document["apps"][0].pop("handoff")
    manual = tmp_path / "manual.json"
    manual.write_text(json.dumps(document))
    rotated = run_cli(["rotate", "acme", "--force", "--json", "--config", str(manual)])
    assert rotated.code == 0, rotated
    answer = json.loads(rotated.out)
    assert answer["stage"] == "awaiting-confirmation" and any(e["steps"] for e in answer["events"])
    world = sandbox.world
    world.facility("acme").client_secret = next(
        v.value for v in world.vault(ids.vault_name).secrets[ids.vault_secret_name].versions if v.tags.get("keyId") == answer["keyId"]
    )
    confirmed = run_cli(["confirm", "acme", "--key-id", answer["keyId"], "--json", "--config", str(manual)])
    assert confirmed.code == 0, confirmed
    assert_style(answer)
    assert_style(json.loads(confirmed.out))


# ---------------------------------------------------------------- fix texts


def test_fix_texts_name_the_facility_and_its_urls(acme, sandbox, ids):
    sandbox.world.find_app(ids.smarttrace_app_id).web["logoutUrl"] = "https://api.smarttrace.ai/v1/auth/callback/azure-logout/elsewhere"
    report = json.loads(acme("check", "--json").out)
    fixes = {f["code"]: f["fix"] for f in report["apps"][0]["findings"]}
    assert "sso-monitor rotate acme" in fixes["SECRET_EXPIRING"] and "https://acme.smarttrace.ai" in fixes["SECRET_EXPIRING"]
    assert "https://api.smarttrace.ai/v1/auth/callback/azure-logout/acme" in fixes["LOGOUT_URL_MISMATCH"]
    assert ids.smarttrace_app_id in fixes["LOGOUT_URL_MISMATCH"]
    text = acme("check").out
    for placeholder in ("FACILITY", "<facility>", "your SmartTrace app", "the expected URL"):
        assert placeholder not in text and placeholder not in json.dumps(report), placeholder


def test_no_catalogue_placeholder_is_left_in_any_fix(acme):
    """Every code, with the facts its finding carries: the fix names this app (a code added
    later without a template of its own is filled too, from the same names)."""
    from sso_monitor.checks.findings import CODES, finding, with_real_names

    config = acme.config()
    (app,) = config.apps
    facts = {
        "key_id": "9f0c1d2e-0000-4000-8000-000000000001",
        "monitor_object_id": "5e6f7a8b-0000-4000-8000-000000000002",
        "expected": "https://x/y",
        "url": "https://x",
    }
    placeholders = re.compile(r"\bFACILITY\b|<facility>|\bAPP_ID\b|\bKEY_ID\b|\bMONITOR_OBJECT_ID\b|\bNUMBER\b|your SmartTrace app|the expected UR[LI]\b")
    left = {code: found.fix for code in CODES if placeholders.search((found := with_real_names(finding(code, "m", **facts), app, config.vault_url)).fix)}
    assert left == {"TOKEN_REQUEST_REFUSED": CODES["TOKEN_REQUEST_REFUSED"].fix}  # the check always writes its fix (NUMBER: the refusal's code)


@pytest.mark.parametrize("hours, said", [(-3 * 24 - 1, "expired 3 days ago"), (-1, "expired less than a day ago"), (1, "0 days left"), (24, "1 day left")])
def test_days_left_in_words(hours, said):
    from datetime import UTC, datetime

    from sso_monitor.checks.run import AppResult, CheckReport
    from sso_monitor.cli.output import days_left_text

    now = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)
    result = AppResult(app=None, findings=[], secret_expires=now + timedelta(hours=hours))  # type: ignore[arg-type]
    assert days_left_text(result, CheckReport(results=[result], started=now)) == said


def test_counts_agree_in_number(acme):
    out = acme("check").out
    assert "1 app: 0 ok, 1 warning, 0 critical, 0 errors" in out
    assert "1 apps" not in out


# ---------------------------------------------------------------- no credential at all


def test_no_credential_is_said_once_with_the_command_that_fixes_it(acme, sandbox, ids, tmp_path, monkeypatch):
    """No `az login`, no managed identity: DefaultAzureCredential's production chain
    (environment, workload identity, managed identity) has nothing to offer, and IMDS
    does not answer (no network but the loopback)."""
    document = json.loads(acme.path.read_text())
    document["identities"] = {}  # the home tenant's default: DefaultAzureCredential
    path = tmp_path / "no-credential.json"
    path.write_text(json.dumps(document))
    for key in list(os.environ):
        if key.startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "prod")  # no developer credential (az, azd, PowerShell, VS Code) even where one exists
    before = len(sandbox.world.requests)
    with loopback_only():
        run = run_cli(["check", "--config", str(path)])
        as_json = run_cli(["check", "--json", "--config", str(path)])
    assert_clean(run)
    assert run.code == 3 and run.out == "", run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    (said,) = lines
    assert said.startswith("sso-monitor: no Azure credential") and f"az login --tenant {ids.tenant_id}" in said, said
    assert "DefaultAzureCredential" not in said and len(said) < 500
    assert as_json.code == 3 and json.loads(as_json.out)["apps"][0]["status"] == "error" and as_json.err.count("\n") == 1
    assert all(r.service != "graph" for r in list(sandbox.world.requests)[before:])  # no Graph call got through


def test_a_check_that_failed_for_another_reason_keeps_its_report(acme, sandbox):
    sandbox.faults.add("status", service="vault", status=403)
    sandbox.faults.add("status", service="graph", status=403)
    run = acme("check")
    assert run.code == 3 and "CHECK_FAILED" in run.out and "no Azure credential" not in run.err


# ---------------------------------------------------------------- terminals and pipes


def colours(text: str) -> list[str]:
    """The SGR sequences in ``text`` that set a colour (NO_COLOR allows bold and italic)."""
    found = []
    for sequence in ANSI_COLOUR.findall(text):
        codes = [int(c) for c in sequence[2:-1].split(";") if c]
        if any(30 <= c <= 49 or 90 <= c <= 107 for c in codes):
            found.append(sequence)
    return found


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_output_is_plain_lines_at_any_width(acme):
    out = acme("check").out
    assert not BOX & set(out) and not ANSI_COLOUR.search(out)
    assert max(len(line) for line in out.splitlines()) != 160 and not any(line.endswith(" ") for line in out.splitlines())
    # one line per finding and one per fix, whole: grep finds them
    (expiring,) = [line for line in out.splitlines() if "SECRET_EXPIRING" in line]
    assert expiring.startswith("  SECRET_EXPIRING Client secret ") and expiring.rstrip().endswith("UTC.")
    assert any(line.startswith("    fix: Let the monitor rotate it (sso-monitor rotate acme)") for line in out.splitlines())
    (heading,) = [line for line in out.splitlines() if line.startswith("acme: ")]
    assert re.fullmatch(r"acme: warning \(tenant [0-9a-f-]{36}, app [0-9a-f-]{36}; secret expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, (9|10) days left\)", heading)


@pytest.mark.parametrize("columns", [72, 100, 200])
def test_a_terminal_gets_a_table_of_its_width(acme, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    out = Terminal()
    check_and_report(acme.config(), out=out, err=io.StringIO())
    text = ANSI_COLOUR.sub("", out.getvalue())
    assert BOX & set(text), text
    widths = {len(line) for line in text.splitlines() if line.startswith(("┏", "│", "└"))}
    assert widths == {columns}, widths


def test_no_color_is_respected(acme, monkeypatch):
    coloured = Terminal()
    check_and_report(acme.config(), out=coloured, err=io.StringIO())
    assert colours(coloured.getvalue())
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    check_and_report(acme.config(), out=plain, err=io.StringIO())
    assert colours(plain.getvalue()) == [] and BOX & set(plain.getvalue())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal with a window size (Linux)")
def test_a_real_terminal_sets_the_width(acme, sandbox, tmp_path):
    """As a user runs it: a process whose standard output is a pseudo-terminal 90
    columns wide (no COLUMNS setting) draws its table 90 wide."""
    import fcntl
    import pty
    import struct
    import termios

    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 90, 0, 0))
    environ = clean_environment(tmp_path, {k: v for k, v in os.environ.items() if k.startswith("SSO_MONITOR_SANDBOX_SECRET_")})
    for key in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"):
        environ.pop(key, None)
    environ["TERM"] = "xterm-256color"
    command = [sys.executable, "-m", "sso_monitor.cli.entry", "check", "--config", str(acme.path)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.PIPE, env=environ, cwd=tmp_path)
    os.close(child)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    process.wait(timeout=60)
    os.close(main)
    text = ANSI_COLOUR.sub("", shown.decode("utf-8", "replace")).replace("\r\n", "\n")
    assert process.returncode == 1, process.stderr.read() if process.stderr else ""
    widths = {len(line) for line in text.splitlines() if line.startswith(("┏", "│", "└"))}
    assert widths == {90}, text


# ---------------------------------------------------------------- the command line itself


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "rotate", "acme", "--dry-run"],
        ["rotate", "-v", "acme", "--dry-run"],
        ["rotate", "acme", "-v", "--dry-run"],
        ["rotate", "acme", "--dry-run", "-v"],
        ["check", "--json", "-v"],
    ],
)
def test_verbose_before_or_after_the_command(acme, argv):
    run = acme(*argv)
    assert run.code in (0, 1) and run.verbose, run


def test_every_option_has_help():
    parser = cli._parser()
    missing = []

    def walk(node: argparse.ArgumentParser, where: str) -> None:
        for action in node._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{where} {name}")
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")

    walk(parser, "sso-monitor")
    assert missing == []


# ---------------------------------------------------------------- the wait for propagation


def test_a_terminal_sees_the_wait_for_propagation(acme, sandbox, ids, monkeypatch):
    sandbox.world.tenant(ids.tenant_id).propagation_delay = timedelta(seconds=20)
    document = json.loads(acme.path.read_text())
    document["verify"] = {"successes": 1, "intervalSeconds": 2, "deadlineSeconds": 120}
    config = parse_config(document, {k: v for k, v in os.environ.items() if k.startswith("SSO_MONITOR_SANDBOX_SECRET_")})
    err = Terminal()
    code = rotate_command(config, "acme", dry_run=False, force=True, out=io.StringIO(), err=err, clock=SimulatedClock(sandbox.world))
    assert code == 0, err.getvalue()
    shown = err.getvalue()
    assert "acme: waiting for Entra to accept the new secret (propagation)" in shown and "at most 120 s" in shown
    assert shown.endswith("\r\x1b[2K")  # the line is gone once the rotation goes on

    piped = io.StringIO()
    sandbox.world.tenant(ids.tenant_id).propagation_delay = timedelta(seconds=20)
    assert rotate_command(config, "acme", dry_run=False, force=True, out=io.StringIO(), err=piped, clock=SimulatedClock(sandbox.world)) == 0
    assert piped.getvalue() == ""
