"""function_app's functions, as the Functions host indexes them.

azure-functions' ``get_functions()`` remembers the names it validated and
raises on a second call in one process; several test modules need the list,
so this is the one place that asks: it starts from none and leaves none.
"""

from __future__ import annotations

from typing import Any


def app_functions() -> list[Any]:
    import function_app

    app = function_app.app
    app.functions_bindings = {}
    try:
        return app.get_functions()
    finally:
        app.functions_bindings = {}


def functions_by_name() -> dict[str, Any]:
    return {f.get_function_name(): f for f in app_functions()}
