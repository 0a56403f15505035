"""The function app's bindings, as the SDK registers them and as the Python worker indexes them.

1. In process: ``function_app.app.get_functions()`` yields exactly the expected functions, each
   with the expected trigger (type, route, methods, auth level; schedule; queue, connection).
2. Under the worker: the Functions host runs Python 3.13 apps with ``azure-functions-runtime``.
   A Python 3.13 venv (``.venv313``, built by ``make .venv313`` or by the fixture below) holds that
   package and the app's requirements.txt, and a subprocess there drives the runtime's public
   entry points the host's proxy worker calls, ``worker_init_request`` (which imports
   function_app.py, calls ``get_functions()`` and converts every function to its
   ``RpcFunctionMetadata``: bindings and the raw binding JSON the host reads) and then
   ``functions_metadata_request``. Mistakes only the worker catches (a handler parameter that
   no binding names, an annotation the trigger can't bind to) fail here, before deployment.

The protobuf messages belong to the host's proxy worker, which is not on PyPI, so the driver
hands the runtime a minimal stand-in with FunctionRpc.proto's enum values; any message or
constant the runtime asks for that the stand-in lacks raises AttributeError and fails the test.

Run as a script (``python tests/functions/test_indexing.py --build-venv313``) it only builds
the venv: that is what ``make .venv313`` does, so ``make test`` builds it before pytest runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.app_functions import app_functions

ROOT = Path(__file__).resolve().parents[2]
VENV313 = ROOT / ".venv313"
VENV313_PYTHON = VENV313 / "bin" / "python"
VENV313_STAMP = VENV313 / ".installed"
REQUIREMENTS = ROOT / "requirements.txt"
# The worker package the Functions host uses for Python 3.13 apps (it needs Python >= 3.13).
RUNTIME_SPEC = "azure-functions-runtime==1.3.0"

# ---------------------------------------------------------------------------------------------
# What the app must contain.

# name -> (route, methods, auth level); every HTTP function has the trigger "req" and "$return".
HTTP_FUNCTIONS: dict[str, tuple[str, list[str], str]] = {
    "health": ("health", ["GET"], "ANONYMOUS"),
    "admin_status": ("status", ["GET"], "FUNCTION"),
    # the status page: a browser holds no function key; the report still needs a bearer token
    "admin_status_page": ("status/page", ["GET"], "ANONYMOUS"),
    "admin_status_view": ("status/view", ["GET"], "ANONYMOUS"),
    "admin_status_view_file": ("status/view/{name}", ["GET"], "ANONYMOUS"),
    "admin_check": ("apps/{facility}/check", ["POST"], "FUNCTION"),
    "admin_rotation_status": ("apps/{facility}/rotation", ["GET"], "FUNCTION"),
    "admin_rotate": ("apps/{facility}/rotate", ["POST"], "FUNCTION"),
    "admin_confirm": ("apps/{facility}/confirm", ["POST"], "FUNCTION"),
    "admin_push": ("apps/{facility}/push", ["POST"], "FUNCTION"),
    "admin_snooze": ("apps/{facility}/snooze", ["POST"], "FUNCTION"),
    "admin_openapi": ("openapi.json", ["GET"], "FUNCTION"),
}
# Functions that are being added alongside this test: checked whenever one by that name exists.
# name -> the trigger's expected properties (raw binding JSON keys).
OPTIONAL_FUNCTIONS: dict[str, dict[str, Any]] = {
    "scheduled_run": {"type": "timerTrigger", "direction": "IN", "schedule": "%SSO_MONITOR_SCHEDULE%"},
    "rotation_worker": {
        "type": "queueTrigger",
        "direction": "IN",
        "queueName": "sso-monitor-work",
        "connection": "AzureWebJobsStorage",
    },
    "poison_alert": {
        "type": "queueTrigger",
        "direction": "IN",
        "queueName": "sso-monitor-work-poison",
        "connection": "AzureWebJobsStorage",
    },
}


def _trigger(raw_bindings: list[dict[str, Any]]) -> dict[str, Any]:
    triggers = [b for b in raw_bindings if str(b.get("type", "")).endswith("Trigger")]
    assert len(triggers) == 1, f"expected exactly one trigger binding, got {raw_bindings}"
    return triggers[0]


def check_function(name: str, raw_bindings: list[dict[str, Any]]) -> None:
    """Assert one function's raw bindings (the JSON the host reads) are the expected ones."""
    trigger = _trigger(raw_bindings)
    if name in HTTP_FUNCTIONS:
        route, methods, auth_level = HTTP_FUNCTIONS[name]
        assert trigger["type"] == "httpTrigger", name
        assert str(trigger["direction"]).upper() == "IN", name
        assert trigger["route"] == route, name
        assert sorted(str(m).upper() for m in trigger["methods"]) == sorted(methods), name
        assert str(trigger["authLevel"]).upper() == auth_level, name
        shape = sorted((b["type"], str(b["direction"]).upper(), b["name"]) for b in raw_bindings)
        assert shape == [("http", "OUT", "$return"), ("httpTrigger", "IN", "req")], name
    else:
        expected = OPTIONAL_FUNCTIONS[name]
        got = {key: trigger.get(key) for key in expected}
        got["direction"] = str(got["direction"]).upper()
        assert got == expected, name
        if trigger["type"] == "timerTrigger":
            # A timer that also fires on every host start would rotate on each scale-out/restart.
            assert not trigger.get("runOnStartup"), name


def check_app(functions: dict[str, list[dict[str, Any]]]) -> None:
    """All the HTTP functions, nothing unknown, and each function's bindings right."""
    names = set(functions)
    assert set(HTTP_FUNCTIONS) <= names, f"missing: {sorted(set(HTTP_FUNCTIONS) - names)}"
    unknown = names - set(HTTP_FUNCTIONS) - set(OPTIONAL_FUNCTIONS)
    assert not unknown, f"functions this test does not know: {sorted(unknown)}"
    http = {n for n, raw in functions.items() if _trigger(raw)["type"] == "httpTrigger"}
    assert http == set(HTTP_FUNCTIONS)
    for name, raw_bindings in functions.items():
        check_function(name, raw_bindings)


# ---------------------------------------------------------------------------------------------
# 1. In process (the project's Python).


def test_get_functions_yields_the_expected_bindings() -> None:
    functions = app_functions()
    names = [f.get_function_name() for f in functions]
    assert len(names) == len(set(names)), names
    check_app({f.get_function_name(): [json.loads(raw) for raw in f.get_raw_bindings()] for f in functions})


def test_in_process_check_rejects_a_wrong_binding() -> None:
    """The checks above are not vacuous: a wrong route, method, auth level or queue fails them."""
    good = [
        {"direction": "IN", "type": "httpTrigger", "name": "req", "methods": ["POST"], "authLevel": "FUNCTION", "route": "apps/{facility}/rotate"},
        {"direction": "OUT", "type": "http", "name": "$return"},
    ]
    check_function("admin_rotate", good)
    for key, value in (("route", "apps/{facility}/rotation"), ("methods", ["GET"]), ("authLevel", "ANONYMOUS"), ("type", "queueTrigger")):
        bad = [dict(good[0], **{key: value}), good[1]]
        with pytest.raises(AssertionError):
            check_function("admin_rotate", bad)
    queue = {"direction": "IN", "type": "queueTrigger", "name": "msg", "queueName": "sso-monitor-work", "connection": "AzureWebJobsStorage"}
    check_function("rotation_worker", [queue])
    with pytest.raises(AssertionError):
        check_function("rotation_worker", [dict(queue, queueName="sso-monitor-work-poison")])
    with pytest.raises(AssertionError):
        check_app({"admin_rotate": good})  # the other HTTP functions are missing


# ---------------------------------------------------------------------------------------------
# 2. Under the worker (Python 3.13, azure-functions-runtime).


def find_python313() -> str | None:
    """$PYTHON313, else pyenv's 3.13 (newest first), else python3.13 on PATH, if it runs."""
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")

    def version_key(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parents[1].name))

    candidates = [os.environ.get("PYTHON313")]
    candidates += [str(p) for p in sorted(pyenv.glob("versions/3.13*/bin/python3.13"), key=version_key, reverse=True)]
    candidates.append(shutil.which("python3.13"))  # a pyenv shim is on PATH but may not run
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def _wanted_stamp() -> str:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return json.dumps({"runtime": RUNTIME_SPEC, "requirements_sha256": digest}, sort_keys=True)


def _venv313_runs() -> bool:
    if not VENV313_PYTHON.exists():
        return False
    probe = subprocess.run([str(VENV313_PYTHON), "-c", "import sys; print(sys.version_info[:2] == (3, 13))"], capture_output=True, text=True, check=False)
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def ensure_venv313() -> tuple[Path | None, str]:
    """Build .venv313 unless it is up to date. Returns (its python, "") or (None, why not)."""
    if VENV313_STAMP.exists() and VENV313_STAMP.read_text() == _wanted_stamp() and _venv313_runs():
        return VENV313_PYTHON, ""
    python313 = find_python313()
    if python313 is None:
        return None, ("no Python 3.13 found (set PYTHON313, or `pyenv install 3.13`): azure-functions-runtime, the worker the Functions host uses, needs it")
    VENV313_STAMP.unlink(missing_ok=True)
    if not _venv313_runs():
        subprocess.run([python313, "-m", "venv", "--clear", str(VENV313)], check=True)
    # requirements.txt is hashed, and pip's hash-checking mode then wants a hash for every
    # requirement of the same call: the lock first, then the worker on top of it.
    pip = [str(VENV313_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--require-hashes", "-r", str(REQUIREMENTS)], check=True)
    subprocess.run([*pip, RUNTIME_SPEC], check=True)
    VENV313_STAMP.write_text(_wanted_stamp())
    return VENV313_PYTHON, ""


# Runs under .venv313: index the function app in argv[1] as the host's worker does and print
# {"status": "Success", "functions": [...]} or {"status": "Failure", "error": "..."} as JSON.
WORKER_DRIVER = textwrap.dedent(
    """
    import asyncio, json, os, sys, types

    app_dir = sys.argv[1]
    sys.path.insert(0, app_dir)  # the host starts the worker in the app's folder
    os.chdir(app_dir)

    import azure_functions_runtime as runtime


    class Message:
        def __init__(self, **fields):
            self.__dict__.update(fields)


    def message(name, **enum_values):
        return type(name, (Message,), enum_values)


    # FunctionRpc.proto: BindingInfo.Direction in=0 out=1 inout=2, BindingInfo.DataType
    # undefined=0 string=1 binary=2 stream=3, StatusResult.Status Failure=0 Success=1 Cancelled=2.
    protos = types.SimpleNamespace(
        BindingInfo=message("BindingInfo", out=1, inout=2, undefined=0, string=1, binary=2, stream=3, **{"in": 0}),
        StatusResult=message("StatusResult", Failure=0, Success=1, Cancelled=2),
        RpcException=message("RpcException"),
        RpcFunctionMetadata=message("RpcFunctionMetadata"),
        RpcRetryOptions=message("RpcRetryOptions"),
        WorkerInitResponse=message("WorkerInitResponse"),
        WorkerMetadata=message("WorkerMetadata"),
        FunctionMetadataResponse=message("FunctionMetadataResponse"),
    )
    init = types.SimpleNamespace(function_app_directory=app_dir, capabilities={})
    request = types.SimpleNamespace(
        request=types.SimpleNamespace(worker_init_request=init),
        properties={"host": "127.0.0.1", "protos": protos},
    )
    init_response = asyncio.run(runtime.worker_init_request(request))
    if init_response.result.status != protos.StatusResult.Success:
        print(json.dumps({"status": "Failure", "error": init_response.result.exception.message}))
        sys.exit(0)
    metadata = asyncio.run(runtime.functions_metadata_request(None))
    assert metadata.result.status == protos.StatusResult.Success
    functions = [
        {
            "name": fm.name,
            "entry_point": fm.entry_point,
            "script_file": fm.script_file,
            "language": fm.language,
            "properties": fm.properties,
            "bindings": {name: {"type": b.type, "direction": b.direction} for name, b in fm.bindings.items()},
            "raw_bindings": [json.loads(raw) for raw in fm.raw_bindings],
        }
        for fm in metadata.function_metadata_results or []
    ]
    print(json.dumps({"status": "Success", "functions": functions}))
    """
)


@pytest.fixture(scope="session")
def python313() -> Path:
    python, why_not = ensure_venv313()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(why_not)
        pytest.skip(why_not)
    return python


def index_with_worker(python313: Path, app_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(python313), "-I", "-B", "-c", WORKER_DRIVER, str(app_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"the worker driver crashed:\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"the worker driver printed nothing:\n{done.stderr}"
    return json.loads(lines[-1])


# Building .venv313 from nothing takes about a minute; pyproject's 120 s per test is too tight.
worker = pytest.mark.timeout(900)


@worker
def test_worker_indexes_the_function_app(python313: Path) -> None:
    result = index_with_worker(python313, ROOT)
    assert result["status"] == "Success", result.get("error")
    indexed = {f["name"]: f for f in result["functions"]}
    assert len(indexed) == len(result["functions"]), "a function was indexed twice"
    # Every function the SDK registers is indexed by the worker, and nothing else.
    assert set(indexed) == {f.get_function_name() for f in app_functions()}
    check_app({name: f["raw_bindings"] for name, f in indexed.items()})
    for name, f in indexed.items():
        assert f["language"] == "python" and f["entry_point"] == name
        assert f["script_file"] and Path(f["script_file"]).suffix == ".py"
        assert f["properties"].get("worker_indexed") == "True"
        # The typed bindings agree with the raw JSON: same names, types and directions.
        direction = {"IN": 0, "OUT": 1, "INOUT": 2}
        from_raw = {b["name"]: {"type": b["type"], "direction": direction[str(b["direction"]).upper()]} for b in f["raw_bindings"]}
        assert f["bindings"] == from_raw, name


# (what the mistake is, the app with it, the app without it, what the worker says)
BROKEN_APPS = [
    (
        "http handler parameter that no binding names",
        """
        @app.route(route="x", methods=["GET"])
        def x(request: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("x")
        """,
        """
        @app.route(route="x", methods=["GET"])
        def x(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("x")
        """,
        "declared in Python but not in the function definition",
    ),
    (
        "timer trigger arg_name that is not the handler's parameter",
        """
        @app.function_name("scheduled_run")
        @app.timer_trigger(schedule="%SSO_MONITOR_SCHEDULE%", arg_name="timer")
        def scheduled_run(tmr: func.TimerRequest) -> None:
            pass
        """,
        """
        @app.function_name("scheduled_run")
        @app.timer_trigger(schedule="%SSO_MONITOR_SCHEDULE%", arg_name="timer")
        def scheduled_run(timer: func.TimerRequest) -> None:
            pass
        """,
        "declared in Python but not in the function definition",
    ),
    (
        "queue trigger bound to a parameter of the wrong type",
        """
        @app.queue_trigger(arg_name="msg", queue_name="sso-monitor-work", connection="AzureWebJobsStorage")
        def rotation_worker(msg: func.HttpRequest) -> None:
            pass
        """,
        """
        @app.queue_trigger(arg_name="msg", queue_name="sso-monitor-work", connection="AzureWebJobsStorage")
        def rotation_worker(msg: func.QueueMessage) -> None:
            pass
        """,
        "do not match the corresponding function parameter's Python type",
    ),
    (
        "two functions with the same name",
        """
        @app.function_name("dup")
        @app.route(route="a")
        def a(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("a")

        @app.function_name("dup")
        @app.route(route="b")
        def b(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("b")
        """,
        """
        @app.function_name("dup_a")
        @app.route(route="a")
        def a(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("a")

        @app.function_name("dup_b")
        @app.route(route="b")
        def b(req: func.HttpRequest) -> func.HttpResponse:
            return func.HttpResponse("b")
        """,
        "does not have a unique function name",
    ),
]

APP_HEADER = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
"""


@worker
@pytest.mark.parametrize(("mistake", "broken", "fixed", "error"), BROKEN_APPS, ids=[case[0] for case in BROKEN_APPS])
def test_worker_rejects_a_binding_mistake(python313: Path, tmp_path: Path, mistake: str, broken: str, fixed: str, error: str) -> None:
    """The worker fails the app with the mistake and indexes the same app without it, so the
    failure is the mistake's (not the harness's) and the test above can fail."""
    for name, body, expect_success in (("broken", broken, False), ("fixed", fixed, True)):
        app_dir = tmp_path / name
        app_dir.mkdir()
        (app_dir / "function_app.py").write_text(APP_HEADER + textwrap.dedent(body))
        result = index_with_worker(python313, app_dir)
        if expect_success:
            assert result["status"] == "Success", f"{mistake}, fixed: {result.get('error')}"
            assert result["functions"], mistake
        else:
            assert result["status"] == "Failure", f"the worker indexed an app with a {mistake}"
            assert error in result["error"], result["error"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--build-venv313"]:
        sys.exit(f"usage: {sys.argv[0]} --build-venv313")
    built, reason = ensure_venv313()
    print(f"{VENV313.name}: {built}" if built else f"{VENV313.name} not built: {reason}")
