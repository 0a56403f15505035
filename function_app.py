"""The Azure Functions entry point: create the app, register the package's blueprints."""

import azure.functions as func

from sso_monitor.functions import admin, health, scheduled

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health.bp)
app.register_functions(admin.bp)
app.register_functions(scheduled.bp)
