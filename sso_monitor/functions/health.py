"""GET /api/health: the Function App is up and which version runs. No secrets, no calls out."""

from __future__ import annotations

import json

import azure.functions as func

from sso_monitor import __version__

bp = func.Blueprint()


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"status": "ok", "version": __version__}),
        status_code=200,
        mimetype="application/json",
    )
