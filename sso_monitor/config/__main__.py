"""``python -m sso_monitor.config --schema > docs/config.schema.json``: print the JSON
Schema of the configuration document, generated from its models (document.py)."""

import sys

from .document import schema_text

if sys.argv[1:] != ["--schema"]:
    sys.exit("usage: python -m sso_monitor.config --schema > docs/config.schema.json")
sys.stdout.write(schema_text())
