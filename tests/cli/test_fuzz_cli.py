"""Generated input for every command of ``sso-monitor`` (issue "Safety and hardening", item 6).

The rule: no input produces a traceback, and the exit code is always one of the
documented ones (0 ok, 1 warnings, 2 critical, 3 the monitor failed or could not run,
bad usage included; 130 only for an interrupt). Each test mirrors
tests/functions/test_fuzz_api.py for the command line:

- ``test_generated_arguments_and_broken_configurations`` (no sandbox, every command):
  argument lists built from each command's own options, in any order, with
  ``-v`` before and after the subcommand, unknown options, ``--opt=value`` forms, a
  missing value at the end, ``--`` and ``-``; values from pools of valid and invalid
  facility names, unicode, control characters, NUL bytes (argv cannot carry them, a
  caller of ``main`` can), lone surrogates (what a non-UTF-8 argv byte becomes),
  very long strings, extreme and malformed ``--until`` dates, keyIds of every length
  and shape; configurations missing, empty, not JSON, not UTF-8, over the size
  limit, nested too deeply, valid JSON of the wrong shape (generated), a directory,
  the JSON itself in ``--config`` or in SSO_MONITOR_CONFIG. ``sandbox`` and ``demo``
  get scenario files that cannot be loaded (a valid one would run a sandbox). No
  configuration here can be used, so nothing may reach any network: every
  resolution and connection that is not to the loopback fails the test.
- ``test_generated_input_against_the_sandbox`` (one sandbox per command): the same
  arguments, but mostly with a valid configuration pointing at the sandbox (as a
  file or as the JSON itself, with a Teams channel on the sandbox's webhook so
  ``--alert`` really alerts), and the facility, keyIds the sandbox's vault holds,
  real rotations, confirmations and adoptions among the generated inputs; ``adopt``
  reads generated standard input (the real secret, a wrong one, nothing, non-UTF-8,
  200 KB). Every output must hold no run of 8 characters of a secret the sandbox
  issued (world.issued_secrets; for a webhook URL, its signature).
- ``test_snooze_until_and_reason_follow_the_one_rule``: generated --until (dates,
  date-times in every offset, the extremes of datetime, malformed ones) and --reason
  (up to 100 KB, bytes that were not UTF-8) against an oracle: alerts.parse_until and
  alerts.snooze_problem say exactly which are taken (0), the rest are refused naming
  the option (3).
- ``test_faults_in_the_cloud_never_break_the_rule``: well-formed check, status, rotate,
  confirm and adopt against a sandbox failing in generated ways (error statuses,
  throttling, dropped or lost answers, a crash, latency).
- and, fixed, what the fuzz found: ``--opt=--``, broken alert state files, a login
  name that cannot be found.

Beyond the rule, the tests expect each failure an input can cause to be stated in
its own words: main()'s catch-all ("the command failed (XError)") is for the
monitor's own bugs, and no generated input may reach it (not even a NUL byte, which
only a caller of ``main`` can pass: argv cannot carry one).

Which outcomes the examples reached: ``--hypothesis-show-statistics``. A deeper run:
``CLI_FUZZ_SCALE=10`` (ten times the examples, a random seed).
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sso_monitor.checks.findings import CODES
from sso_sandbox.settings import monitor_document

from .harness import Run, assert_clean, issued, loopback_only, run_cli

# CLI_FUZZ_SCALE=10 runs ten times the examples, with a random seed (a deeper local run).
SCALE = max(1, int(os.environ.get("CLI_FUZZ_SCALE", "1") or 1))
FUZZ = settings(
    deadline=None,
    derandomize=SCALE == 1,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

COMMANDS = ("sandbox", "check", "snooze", "rotate", "status", "confirm", "push", "adopt", "demo")
POSITIONALS = {"snooze": ("facility", "code"), "rotate": ("facility",), "confirm": ("facility",), "push": ("facility",), "adopt": ("facility",)}
# option -> the pool its value comes from (None: a flag), per command, from cli._parser()
OPTIONS: dict[str, dict[str, str | None]] = {
    "sandbox": {"--scenario": "scenario", "--state-dir": "path"},
    "check": {"--config": "config", "--app": "facility", "--json": None, "--alert": None, "--alert-state": "state"},
    "snooze": {"--until": "until", "--reason": "reason", "--alert-state": "state", "--config": "config", "--json": None},
    "rotate": {"--config": "config", "--dry-run": None, "--force": None, "--json": None, "--alert": None, "--alert-state": "state"},
    "status": {"--config": "config", "--json": None},
    "confirm": {"--key-id": "key_id", "--config": "config", "--json": None, "--alert": None, "--alert-state": "state"},
    "push": {"--dry-run": None, "--config": "config", "--json": None},
    "adopt": {"--key-id": "key_id", "--from-vault": None, "--config": "config", "--json": None},
    "demo": {"--scenario": "scenario", "--json": None},
}
# Present in almost every example: without them the command has little to chew on
# (and sandbox/demo without a broken --scenario would start a real sandbox).
USUALLY = {"--config", "--until", "--key-id", "--scenario"}
ALWAYS = {"sandbox": {"--scenario"}, "demo": {"--scenario"}}

FACILITY = "acme"  # the standard world's one facility


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a branch by weight, then draw from it (as in tests/functions/test_fuzz_api.py)."""
    branches = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(branches) - 1).flatmap(lambda index: branches[index])


# ---------------------------------------------------------------- value pools

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)  # control characters, NUL, lone surrogates
ARGV_TEXT = st.text(st.characters(codec=None, exclude_categories=(), exclude_characters="\x00"), max_size=60)
LONG_TEXT = st.one_of(st.integers(1_000, 20_000).map(lambda n: "x" * n), st.text(min_size=300, max_size=2_000), st.just("é" * 100_000))
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "-",
        "--",
        "-v",
        "--json",
        "\n",
        "\t",
        "\x00",
        "\udcff",
        "\u202e",
        "\x1b[31mred\x1b[0m",
        "a\nb",
        "🙂",
        "ＡＣＭＥ",
        "%s%n",
        "{}",
        "[]",
        "null",
        "../../etc/passwd",
        "C:\\x",
        "~",
    ]
)


def text_values() -> st.SearchStrategy[str]:
    return weighted((3, ANY_TEXT), (1, ARGV_TEXT), (1, LONG_TEXT), (2, TRICKY))


def facilities(known: str | None) -> st.SearchStrategy[str]:
    near = ["ACME", " acme", "acme ", "acme\n", "acme\x00", "-acme", "acme/..", "nowhere", "a" * 63, "a" * 64, "ácme", "acme\udcff", "acme" * 5000]
    choices = [(2, st.sampled_from(near)), (2, text_values()), (1, st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True))]
    if known:
        choices.insert(0, (6, st.just(known)))
    return weighted(*choices)


def codes() -> st.SearchStrategy[str]:
    return weighted(
        (4, st.sampled_from(sorted(CODES))), (1, st.sampled_from(["logout_url_mismatch", "NOT_A_CODE", "", "LOGOUT_URL_MISMATCH "])), (1, text_values())
    )


EXTREME_UNTIL = [
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "2026-13-01",
    "2026-12-31T24:00:00",
    "2026-12-31T23:59:60Z",
    "2026-12-31T08:00:00+24:00",
    "2026-12-31T08:00:00+23:59",
    "2026-12-31Z",
    "2026-12-31T08:00:00.123456789Z",
    "20261231",
    "2026-W53-7",
    "２０２６-１２-３１",
    "now",
    "tomorrow",
    "-1",
    "1e9",
    "",
    " ",
    "\x00",
    "2026-12-31\x00",
    "2026-12-31" + " " * 50,
    "Z",
    "T",
    "+00:00",
]


def untils(now: datetime) -> st.SearchStrategy[str]:
    soon = st.integers(1, 89 * 24).map(lambda hours: (now + timedelta(hours=hours)).isoformat())
    days = st.integers(-400, 400).map(lambda n: (now + timedelta(days=n)).strftime("%Y-%m-%d"))
    zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)), timezone(timedelta(hours=5, minutes=45))])
    anything = st.datetimes(timezones=st.none() | zones).map(lambda moment: moment.isoformat())
    return weighted((3, soon), (2, days), (2, st.sampled_from(EXTREME_UNTIL)), (2, anything), (1, text_values()))


def reasons() -> st.SearchStrategy[str]:
    not_utf8 = st.sampled_from(["caf\udce9", "\udcff", "moving\udc80 racks", "\ud800"])  # argv bytes that were not UTF-8
    return weighted((3, st.text(max_size=40)), (1, st.just("r" * 200)), (1, st.just("r" * 201)), (1, st.just("x" * 100_000)), (1, not_utf8), (1, text_values()))


GUIDS = st.uuids().map(str)
KEY_ID_SHAPES = st.one_of(
    GUIDS,
    GUIDS.map(str.upper),
    GUIDS.map(lambda g: "{" + g + "}"),
    GUIDS.map(lambda g: g.replace("-", "")),
    GUIDS.map(lambda g: " " + g + "\n"),
    GUIDS.map(lambda g: g[:-1]),
    GUIDS.map(lambda g: g + "0"),
    st.text(alphabet="0123456789abcdef-", max_size=80),
    st.integers(0, 200).map(lambda n: "0" * n),
)


def key_ids(held: st.SearchStrategy[str] | None) -> st.SearchStrategy[str]:
    choices = [(3, KEY_ID_SHAPES), (1, text_values()), (1, st.just("00000000-0000-0000-0000-000000000000"))]
    if held is not None:
        choices.insert(0, (4, held))
    return weighted(*choices)


def relative_paths() -> st.SearchStrategy[str]:
    """Generated file names, kept inside the test's directory (the working directory)."""
    return ARGV_TEXT.map(lambda text: "gen/" + text.replace("..", "_").lstrip("/~") if text.strip() else text)


# ---------------------------------------------------------------- files on disk


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4), max_leaves=12)


class Files:
    """The broken files of one test (configurations, scenarios, alert state), in its
    working directory, and the generated ones its examples add."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        d = root / "files"
        d.mkdir()
        (d / "a-directory").mkdir()
        (d / "a-file").write_text("not a directory")
        self.broken: dict[str, str] = {
            "missing": str(d / "missing.json"),
            "directory": str(d / "a-directory"),
            "under-a-file": str(d / "a-file" / "apps.json"),
            "empty": self.write("empty.json", b""),
            "blank": self.write("blank.json", b" \n\t\n"),
            "not-json": self.write("not-json.json", b"vaultUrl = https://kv.vault.azure.net\n"),
            "truncated": self.write("truncated.json", b'{"vaultUrl": "https://kv.vault.azure.net", "apps": ['),
            "not-utf8": self.write("latin1.json", '{"apps": [{"facility": "café"}]}'.encode("latin-1")),
            "utf16": self.write("utf16.json", '{"apps": []}'.encode("utf-16")),
            "bom": self.write("bom.json", b"\xef\xbb\xbf{}"),
            "nul": self.write("nul.json", b'{"apps": [\x00]}'),
            "binary": self.write("binary.json", bytes(range(256)) * 8),
            "huge": self.write("huge.json", b" " * 20_000_001 + b"{}"),
            "deep-array": self.write("deep-array.json", b"[" * 200_000 + b"]" * 200_000),
            "deep-object": self.write("deep-object.json", b'{"apps": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b"}"),
            "deep-but-parseable": self.write(
                "deep-ok.json",
                b'{"defaults": {"rotation": '
                + b'{"a": ' * 900
                + b"1"
                + b"}" * 900
                + b'}, "apps": [{"facility": "x", "rotation": '
                + b'{"a": ' * 900
                + b"1"
                + b"}" * 900
                + b"}]}",
            ),
            "many-bad-apps": self.write(
                "many.json",
                json.dumps({"vaultUrl": "https://kv.vault.azure.net", "apps": [{"facility": f"f{i}", "tenantId": "x"} for i in range(5_000)]}).encode(),
            ),
            "nan": self.write("nan.json", b'{"verify": {"intervalSeconds": NaN}, "apps": [1e999]}'),
            "big-number": self.write("big-number.json", b'{"network": {"concurrency": ' + b"9" * 5_000 + b"}}"),
            "array": self.write("array.json", b"[]"),
            "string": self.write("string.json", b'"apps"'),
        }
        self.scenarios = dict(self.broken) | {
            "wrong-shape": self.write("scenario-wrong.json", b'{"tenants": 3}'),
            "no-tenants": self.write("scenario-empty.json", b'{"tenants": []}'),
        }

    def write(self, name: str, data: bytes) -> str:
        path = self.root / "files" / name
        path.write_bytes(data)
        return str(path)

    def generated(self, data: bytes) -> str:
        self.count += 1
        return self.write(f"generated-{self.count}.json", data)


def config_values(files: Files, valid: list[str] | None = None) -> st.SearchStrategy[str]:
    """A --config value: a broken file, generated JSON (as a file or as the text itself),
    garbage text, or (``valid``) a configuration pointing at the sandbox."""
    generated = JSON_VALUES.map(lambda value: json.dumps(value))
    objects = st.dictionaries(
        st.sampled_from(["vaultUrl", "apps", "identities", "cloud", "network", "verify", "channels", "alerts", "defaults", "schedule", "adminApi", "x"]),
        JSON_VALUES,
        max_size=5,
    )
    choices = [
        (4, st.sampled_from(sorted(files.broken.values()))),
        (2, generated.map(lambda text: files.generated(text.encode()))),
        (2, objects.map(lambda obj: files.generated(json.dumps(obj).encode()))),
        (1, objects.map(json.dumps)),  # the JSON itself, as SSO_MONITOR_CONFIG may be
        (1, st.sampled_from(["{", "{}", '{"apps": []}', "{" * 10_000, " {", "{\x00}"])),
        (1, text_values()),
    ]
    if valid:
        choices.insert(0, (14, st.sampled_from(valid)))
    return weighted(*choices)


def state_values(files: Files) -> st.SearchStrategy[str]:
    base = files.root / "state"
    garbage = files.write("state-garbage.json", b"{not json")
    latin = files.write("state-latin1.json", '{"é": 1}'.encode("latin-1"))
    wrong = files.write("state-wrong.json", b'{"items": 3, "snoozes": [1, 2]}')
    listing = files.write("state-list.json", b"[]")
    fixed = [
        str(base / "alerts.json"),
        str(base / "alerts.json"),
        files.broken["directory"],
        files.broken["under-a-file"],
        garbage,
        latin,
        wrong,
        listing,
        files.broken["deep-array"],
        files.broken["empty"],
        "",
        ".",
    ]
    return weighted((4, st.sampled_from(fixed)), (1, relative_paths()), (1, text_values()))


def scenario_values(files: Files) -> st.SearchStrategy[str]:
    """Only scenarios that cannot be loaded: a loadable one would start a real sandbox."""
    return weighted((4, st.sampled_from(sorted(files.scenarios.values()))), (1, relative_paths()), (1, st.sampled_from(["", ".", "-", "\x00"])))


def pools(
    files: Files, *, known: str | None = None, valid_configs: list[str] | None = None, held: st.SearchStrategy[str] | None = None, now: datetime | None = None
) -> dict[str, st.SearchStrategy[str]]:
    return {
        "facility": facilities(known),
        "code": codes(),
        "until": untils(now or datetime.now(UTC)),
        "reason": reasons(),
        "key_id": key_ids(held),
        "config": config_values(files, valid_configs),
        "state": state_values(files),
        "scenario": scenario_values(files),
        "path": weighted((3, st.just(str(files.root / "sandbox-state"))), (1, relative_paths())),
    }


# ---------------------------------------------------------------- argument lists

JUNK_OPTIONS = st.sampled_from(
    [
        "--bogus",
        "-x",
        "--json=yes",
        "--app",
        "--config",
        "--until",
        "--key-id",
        "--reason",
        "-",
        "--",
        "---",
        "--=",
        "-vv",
        "-V",
        "--verb",
        "--conf",
        "--dry",
        "-h",
        "--help",
        "--version",
    ]
)


@st.composite
def argument_lists(draw: Any, command: str, values: dict[str, st.SearchStrategy[str]], *, clean: bool = False) -> list[str]:
    """One command's arguments: its positionals and options in any order, each value
    from its pool, sometimes --opt=value, sometimes junk, -v before or after.
    ``clean``: well-formed (every positional, no junk, the command spelled right)."""
    fragments: list[list[str]] = []
    names = POSITIONALS.get(command, ())
    if names and (clean or draw(st.integers(0, 9)) > 0):
        positional = [draw(values[name], label=name) for name in names]
        if not clean and draw(st.integers(0, 9)) == 0:
            positional = (
                positional[: draw(st.integers(0, len(positional)))] if draw(st.booleans()) else positional + [draw(text_values(), label="extra positional")]
            )
        fragments.append(positional)
    for option, pool in OPTIONS[command].items():
        required = option in ALWAYS.get(command, ()) or (clean and option in USUALLY)
        wanted = required or draw(st.integers(0, 9)) < (9 if option in USUALLY else 3)
        if not wanted:
            continue
        if pool is None:
            fragments.append([option])
            continue
        value = draw(values[pool], label=option)
        if option in ALWAYS.get(command, ()) or draw(st.integers(0, 4)) > 0:
            fragments.append([option, value] if draw(st.integers(0, 3)) > 0 or value.startswith("-") else [f"{option}={value}"])
        else:
            fragments.append([f"{option}={value}"])
    if not clean and draw(st.integers(0, 3)) == 0:  # junk: unknown options, a value missing at the end, stray text
        for _ in range(draw(st.integers(1, 2))):
            fragments.append([draw(weighted((3, JUNK_OPTIONS), (1, ARGV_TEXT)), label="junk")])
    order = draw(st.permutations(fragments))
    argv = [token for fragment in order for token in fragment]
    junk_before = st.sampled_from([["--bogus"], ["-v", "-v"], ["--version"], ["-h"]])
    before = draw(weighted((6, st.just([])), (3, st.just(["-v"])), (1, st.just(["--verbose"])), (0 if clean else 1, junk_before)), label="before")
    after = draw(weighted((6, st.just([])), (2, st.just(["-v"])), (1, st.just(["--verbose"]))), label="after")
    spelled = (
        command if clean else draw(weighted((12, st.just(command)), (1, st.sampled_from([command.upper(), command[:3], command + "x", ""]))), label="command")
    )
    return [*before, spelled, *argv, *after]


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """The test's own directory as cwd and HOME (the default alert state and the local
    lease's lock files go there), and no setting from the environment that could point
    the monitor anywhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in list(os.environ):
        if name.startswith(("SSO_MONITOR", "AZURE_", "AzureWebJobs", "IDENTITY_", "MSI_")) or name.lower() in ("https_proxy", "http_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def no_network():
    with loopback_only() as attempts:
        yield attempts
    assert not attempts, f"the CLI tried to reach the network outside the sandbox: {attempts[:5]}"


@pytest.fixture
def no_sandbox_started(monkeypatch):
    """A belt for the tests without a sandbox: starting one would block (``sandbox``)
    or take seconds (``demo``); no generated input may get that far."""
    from sso_sandbox.runtime import Sandbox

    def refuse(self):
        raise AssertionError("a generated input started a sandbox")

    monkeypatch.setattr(Sandbox, "start", refuse)


@contextmanager
def environment(value: str | None):
    """SSO_MONITOR_CONFIG for one example (None: unset)."""
    old = os.environ.pop("SSO_MONITOR_CONFIG", None)
    if value and "\x00" not in value and _encodable(value):  # what an environment can hold
        os.environ["SSO_MONITOR_CONFIG"] = value
    try:
        yield
    finally:
        os.environ.pop("SSO_MONITOR_CONFIG", None)
        if old is not None:
            os.environ["SSO_MONITOR_CONFIG"] = old


def _encodable(value: str) -> bool:
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        return False
    return True


def outcome(run: Run) -> str:
    first = run.err.strip().splitlines()[-1][:60] if run.err.strip() else ""
    return f"exit {run.code}: {re.sub(r'[0-9a-f-]{36}', 'GUID', first)}"


# ---------------------------------------------------------------- without a sandbox


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", COMMANDS)
@settings(FUZZ, max_examples=80 * SCALE)
@given(data=st.data())
def test_generated_arguments_and_broken_configurations(workdir, no_network, no_sandbox_started, command, data):
    files = _files(workdir)
    argv = data.draw(argument_lists(command, pools(files)), label="argv")
    env = data.draw(weighted((4, st.none()), (1, config_values(files))), label="SSO_MONITOR_CONFIG")
    stdin = data.draw(stdin_values(None), label="stdin") if command == "adopt" else b""
    with environment(env):
        run = run_cli(argv, stdin=stdin)
    event(outcome(run))
    assert_clean(run)
    # No configuration here can be used: nothing may succeed but --help and --version.
    if run.code == 0:
        assert any(token in ("-h", "--help", "--version") for token in argv) or _abbreviates_help(argv), run
    else:
        assert run.code == 3, run


def _abbreviates_help(argv: list[str]) -> bool:
    return any(token.startswith("--") and len(token) > 2 and ("--help".startswith(token) or "--version".startswith(token)) for token in argv)


_FILES: dict[Path, Files] = {}


def _files(workdir: Path) -> Files:
    """One set of broken files per test (the examples share it)."""
    if workdir not in _FILES:
        _FILES.clear()
        _FILES[workdir] = Files(workdir)
    return _FILES[workdir]


def stdin_values(secret: str | None) -> st.SearchStrategy[bytes]:
    choices = [
        (
            2,
            st.sampled_from(
                [b"", b"\n", b"   \n", b"\r\n", b"not-a-secret-of-this-app\n", b"\xff\xfe\xfd\n", b"abc\x00def\n", b"\x1b[2J\n", b"Zw8Q~" * 3 + b"\n"]
            ),
        ),
        (1, st.binary(max_size=200)),
        (1, st.text(max_size=80).map(lambda text: text.encode("utf-8", "surrogatepass"))),
        (1, st.sampled_from([b"A" * 200_000 + b"\n", b"A" * 200_000, b"line1\nline2\n"])),
    ]
    if secret:
        value = secret.encode()
        choices.insert(
            0,
            (4, st.sampled_from([value + b"\n", value, b"  " + value + b"  \n", value + b"\r\n", value + b"\nextra\n", value[:-1] + b"\n", value[:3] + b"\n"])),
        )
    return weighted(*choices)


# ---------------------------------------------------------------- against the sandbox

SANDBOX_COMMANDS = ("check", "snooze", "rotate", "status", "confirm", "push", "adopt")


@pytest.fixture
def sandboxed(sandbox, ids, workdir, monkeypatch):
    """A configuration for the standard world's facility with a Teams channel on the
    sandbox's webhook, as a file and as the JSON itself; its app settings in the
    environment; and a few near-valid variants."""
    world = sandbox.world
    world.set_secret(world.vault(ids.vault_name), "teams-webhook", sandbox.endpoints.webhook_url(ids.webhook_id))
    document, environ = monitor_document(sandbox, facilities=[FACILITY])
    document["channels"] = {"teams": {"type": "teams", "webhookSecretName": "teams-webhook"}}
    document["alerts"] = {"channels": ["teams"]}
    document["verify"] = {"successes": 1, "intervalSeconds": 0, "deadlineSeconds": 5}
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    path = workdir / "apps.json"
    path.write_text(json.dumps(document))
    files = _files(workdir)
    variants = [str(path), str(path), str(path), json.dumps(document)]
    # near-valid: each still names only the sandbox's endpoints (or is refused before any call)
    for change in (
        lambda d: d["apps"][0].update(facility="ACME"),
        lambda d: d["apps"].append(dict(d["apps"][0])),
        lambda d: d["apps"][0].update(tenantId=d["apps"][0]["tenantId"].upper()),
        lambda d: d.update(verify={"successes": 0}),
        lambda d: d["apps"][0].update(rotation={"mode": "sideways"}),
        lambda d: d.update(alerts={"channels": ["nowhere"]}),
        lambda d: d["identities"].update({"*": {"kind": "client-secret"}}),  # (cleared, the default identity would ask IMDS and az)
        lambda d: d.update(network={**d["network"], "hostMap": {"*.smarttrace.ai": "not a host"}}),
        lambda d: d.update(network={**d["network"], "caBundle": str(files.broken["missing"])}),
        lambda d: d.update(cloud={**d["cloud"], "graphEndpoint": "http://127.0.0.1:1"}),
        lambda d: d.update(extra=True),
    ):
        variant = json.loads(json.dumps(document))
        change(variant)
        variants.append(files.generated(json.dumps(variant).encode()))
    return sandbox, variants


def well_formed(files: Files, configs: list[str], held: st.SearchStrategy[str], now: datetime) -> dict[str, st.SearchStrategy[str]]:
    """Values a careful operator would type."""
    state = str(files.root / "state" / "alerts.json")
    return {
        "facility": st.sampled_from([FACILITY, FACILITY, FACILITY.upper()]),
        "code": st.sampled_from(sorted(CODES)),
        "until": st.integers(1, 89 * 24).map(lambda hours: (now + timedelta(hours=hours)).isoformat())
        | st.integers(1, 89).map(lambda days: (now + timedelta(days=days)).strftime("%Y-%m-%d")),
        "reason": st.text(max_size=40),
        "key_id": weighted((3, held), (1, GUIDS)),
        "config": st.sampled_from(configs[:4]),
        "state": st.just(state),
    }


def held_key_ids(world) -> st.SearchStrategy[str]:
    """A keyId the sandbox's vaults hold (or its app registration has) at the time of the draw."""

    def held() -> list[str]:
        found = {v.tags["keyId"] for vault in world.vaults.values() for secret in vault.secrets.values() for v in secret.versions if v.tags.get("keyId")}
        return sorted(found) or ["00000000-0000-0000-0000-000000000000"]

    return st.integers(0, 99).map(lambda index: (ids := held())[index % len(ids)])


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("no_secret_in_logs")
@pytest.mark.parametrize("command", SANDBOX_COMMANDS)
@settings(FUZZ, max_examples=60 * SCALE)
@given(data=st.data())
def test_generated_input_against_the_sandbox(sandboxed, no_network, workdir, command, data):
    sandbox, configs = sandboxed
    world = sandbox.world
    files = _files(workdir)
    clean = data.draw(st.booleans(), label="well-formed")
    if clean:
        # Half the examples are well-formed, so that what lies behind the parsing (real
        # checks, rotations, confirmations, adoptions, alerts) is fuzzed for secrets too.
        values = well_formed(files, configs, held_key_ids(world), world.now())
        argv = data.draw(argument_lists(command, values, clean=True), label="argv")
    else:
        values = pools(files, known=FACILITY, valid_configs=configs, held=held_key_ids(world), now=world.now())
        argv = data.draw(argument_lists(command, values), label="argv")
    stdin = data.draw(stdin_values(world.facility(FACILITY).client_secret), label="stdin") if command == "adopt" else b""
    run = run_cli(argv, stdin=stdin)
    event(outcome(run))
    assert_clean(run, secrets=issued(world))
    if clean:  # what a well-formed command may answer (an --alert may also not get through: 3)
        expected = {"status": {0}, "snooze": {0}, "check": {0, 1, 2}, "rotate": {0, 2}, "confirm": {0, 2}, "push": {3}, "adopt": {0, 2, 3}}[command]
        if "--alert" in argv:
            expected = expected | {3}
        assert run.code in expected, run


# ---------------------------------------------------------------- snooze: one rule for --until and --reason


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("no_secret_in_logs")
@settings(FUZZ, max_examples=120 * SCALE)
@given(data=st.data())
def test_snooze_until_and_reason_follow_the_one_rule(sandboxed, no_network, workdir, data):
    """--until: a date or date-time (UTC without an offset), in the future, at most 90
    days ahead; --reason: at most 200 characters of text. Exactly those are taken (0),
    everything else is refused in words that name the option (3); nothing else happens."""
    from sso_monitor.alerts.decisions import parse_until, snooze_problem

    _, configs = sandboxed
    now = datetime.now(UTC)
    until = data.draw(untils(now), label="until")
    reason = data.draw(reasons(), label="reason")
    code = data.draw(st.sampled_from(["LOGOUT_URL_MISMATCH", "SECRET_EXPIRING"]), label="code")
    state = workdir / "state" / "alerts.json"
    run = run_cli(["snooze", FACILITY, code, f"--until={until}", f"--reason={reason}", "--config", configs[0], "--alert-state", str(state)])
    assert_clean(run)
    try:
        end = parse_until(until)
    except ValueError:
        event("refused: --until unreadable")
        assert run.code == 3 and "--until" in run.err, run
        return
    near_an_edge = abs((end - now).total_seconds()) < 120 or abs((end - now - timedelta(days=90)).total_seconds()) < 120
    if near_an_edge:
        assert run.code in (0, 3), run
        return
    problem = "not UTF-8" if any("\ud800" <= c <= "\udfff" for c in reason) else snooze_problem(end, now, reason)
    event(f"refused: {problem.split(' must')[0][:30]}" if problem else "snoozed")
    if problem is None:
        assert run.code == 0, run
        assert run.out == f"{FACILITY}: {code} snoozed until {end:%Y-%m-%d %H:%M} UTC\n", run
        assert f"{FACILITY}.{code}" in state.read_text(encoding="utf-8")
    else:
        assert run.code == 3 and ("--until" in run.err or "--reason" in run.err), run
        assert run.out == "", run


def test_who_acts_without_a_login_name(sandboxed, no_network, workdir, monkeypatch):
    """A container's uid without a passwd entry: getpass.getuser() raises; the audit
    trail names the uid and the command still runs."""
    import getpass

    def no_name() -> str:
        raise KeyError("getpwuid(): uid not found: 1000870000")

    monkeypatch.setattr(getpass, "getuser", no_name)
    sandbox, configs = sandboxed
    until = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
    state = workdir / "state" / "alerts.json"
    run = run_cli(["snooze", FACILITY, "LOGOUT_URL_MISMATCH", "--until", until, "--config", configs[0], "--alert-state", str(state)])
    assert_clean(run)
    assert run.code == 0 and f'"cli:uid-{os.getuid()}"' in state.read_text(), run
    run = run_cli(["confirm", FACILITY, "--key-id", "00000000-0000-0000-0000-000000000000", "--config", configs[0]])
    assert_clean(run)
    assert run.code == 2 and "no rotation of acme waits for keyId" in run.err, run


@pytest.mark.parametrize(
    "command",
    [
        ["snooze", FACILITY, "LOGOUT_URL_MISMATCH", "--until=--"],
        ["snooze", FACILITY, "LOGOUT_URL_MISMATCH", "--until=2030-01-01", "--reason=--"],
        ["check", "--app=--"],
        ["confirm", FACILITY, "--key-id=--"],
        ["adopt", FACILITY, "--key-id=--", "--from-vault"],
        ["status", "--config=--"],
        ["check", "--alert", "--alert-state=--"],
    ],
)
def test_an_explicit_double_dash_value(sandboxed, no_network, workdir, command):
    """`--opt=--` (found by the fuzz): Python 3.11's argparse made the value an empty
    list, and the command failed on it with an AttributeError."""
    _, configs = sandboxed
    argv = command if "--config=--" in command else [*command, "--config", configs[0]]
    run = run_cli(argv)
    assert_clean(run)
    assert run.code in (0, 1, 2, 3), run


STATE_FILES = {
    "a directory": lambda files: files.broken["directory"],
    "under a file": lambda files: files.broken["under-a-file"],
    "empty name": lambda files: "",
    "the working directory": lambda files: ".",
    "not JSON": lambda files: files.write("state-garbage.json", b"{not json"),
    "not UTF-8": lambda files: files.write("state-latin1.json", '{"é": 1}'.encode("latin-1")),
    "nested too deeply": lambda files: files.broken["deep-array"],
    "the wrong shape": lambda files: files.write("state-wrong.json", b'{"version": 1, "items": {"snoozes": [1]}}'),
    "a NUL byte": lambda files: "state\x00.json",
}


@pytest.mark.parametrize("name", list(STATE_FILES))
@pytest.mark.parametrize("command", ["snooze", "check"])
def test_a_broken_alert_state_file(sandboxed, no_network, workdir, command, name):
    """(found by the fuzz: a state file nested deeper than Python parses, and an
    --alert-state of "" or ".", reached main()'s catch-all.) Each is refused in words:
    snooze cannot run (3); check still checks, and its alerts are not sent (3)."""
    _, configs = sandboxed
    state = STATE_FILES[name](_files(workdir))
    until = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d")
    args = ["snooze", FACILITY, "LOGOUT_URL_MISMATCH", "--until", until] if command == "snooze" else ["check", "--alert"]
    run = run_cli([*args, "--alert-state", state, "--config", configs[0]])
    assert_clean(run)
    assert run.code == 3 and "alert st" in run.err, run


# ---------------------------------------------------------------- faults: the rule holds whatever the cloud does

FAULT_SERVICES = ("graph", "vault", "login", "smarttrace", "teams")


@st.composite
def fault_rules(draw: Any) -> dict[str, Any]:
    fault = draw(st.sampled_from(["status", "status", "throttle", "drop", "timeout", "latency", "crash"]))
    rule: dict[str, Any] = {"fault": fault, "service": draw(st.sampled_from(FAULT_SERVICES))}
    if draw(st.booleans()):
        rule["method"] = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH"]))
    if draw(st.booleans()):
        rule["nth"] = draw(st.integers(1, 4))
    else:
        rule["times"] = draw(st.integers(1, 3))
    if fault == "status":
        rule["status"] = draw(st.sampled_from([400, 401, 403, 404, 409, 412, 429, 500, 502, 503, 504]))
    elif fault == "throttle":
        rule["retry_after"] = draw(st.sampled_from([0, 1, 120]))
    elif fault == "timeout":
        rule["seconds"] = 0.2
    elif fault == "latency":
        rule["latency_ms"] = draw(st.sampled_from([10, 300]))
    if fault in ("drop", "timeout", "crash"):
        rule["when"] = draw(st.sampled_from(["before", "after"]))
    return rule


@pytest.fixture
def instant_sleep(monkeypatch):
    """Backoffs and Retry-After waits pass at once (asyncio.sleep only: the SDKs' async clients)."""
    import asyncio

    real = asyncio.sleep

    async def instant(delay, result=None):
        return await real(0, result)

    monkeypatch.setattr(asyncio, "sleep", instant)


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("no_secret_in_logs", "instant_sleep")
@settings(FUZZ, max_examples=40 * SCALE)
@given(data=st.data())
def test_faults_in_the_cloud_never_break_the_rule(sandboxed, no_network, workdir, data):
    """Each well-formed command against a sandbox that fails in a generated way (an
    error status, throttling, a dropped or lost answer, a crash, latency; on Graph,
    Entra, Key Vault, SmartTrace or Teams): exit 0-3, no traceback, no secret, and no
    failure that only main()'s catch-all could name."""
    sandbox, configs = sandboxed
    world = sandbox.world
    command = data.draw(st.sampled_from(["check", "check --alert", "status", "rotate", "rotate --alert", "confirm", "adopt"]), label="command")
    rules = data.draw(st.lists(fault_rules(), min_size=1, max_size=2), label="faults")
    sandbox.faults.clear()
    for rule in rules:
        sandbox.faults.add(**rule)
    argv = {
        "check": ["check"],
        "check --alert": ["check", "--alert"],
        "status": ["status", "--json"],
        "rotate": ["rotate", FACILITY, "--force"],
        "rotate --alert": ["rotate", FACILITY, "--force", "--alert"],
        "confirm": ["confirm", FACILITY, "--key-id", data.draw(held_key_ids(world), label="keyId")],
        "adopt": ["adopt", FACILITY],
    }[command]
    state = ["--alert-state", str(workdir / "state" / "alerts.json")] if "--alert" in argv else []
    try:
        run = run_cli([*argv, *state, "--config", configs[0]], stdin=(world.facility(FACILITY).client_secret + "\n").encode())
    finally:
        sandbox.faults.clear()  # a crash refuses everything until recovered: the next example starts afresh
    event(f"{command}: {outcome(run)}")
    assert_clean(run, secrets=issued(world))
