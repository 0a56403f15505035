"""Azure Functions blueprints. function_app.py registers them; each is thin."""
