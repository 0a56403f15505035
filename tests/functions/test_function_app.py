"""The Functions entry point registers the package's blueprints; handlers are called directly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import azure.functions as func

ROOT = Path(__file__).resolve().parents[2]


def test_health_answers_without_touching_anything():
    from tests.app_functions import functions_by_name

    functions = functions_by_name()
    health = functions["health"]
    trigger = health.get_trigger()
    assert trigger.route == "health" and trigger.methods == ["GET"] or [str(m) for m in trigger.methods] == ["GET"]
    request = func.HttpRequest(method="GET", url="/api/health", body=b"")
    response = health.get_user_function()(request)
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok", "version": "0.1.0"}


def test_importing_function_app_pulls_in_no_sdk_and_no_sandbox():
    # Cold start: the entry point must not import the Graph SDK, Key Vault or the sandbox
    # (the bare "azure" namespace package comes with azure.functions).
    code = "import sys, function_app; print(sorted(m for m in sys.modules if m.split('.')[0] in ('msgraph', 'kiota_abstractions', 'azure', 'trustme') and m not in ('azure',) and not m.startswith('azure.functions')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
