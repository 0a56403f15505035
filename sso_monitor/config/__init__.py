"""Configuration: one JSON document, validated on load into typed settings.

The document lists the monitored apps, with ``defaults`` that each app may
override field by field. It comes from a file, or from an app setting that
holds the JSON itself (``SSO_MONITOR_CONFIG``: a path, or a document starting
with ``{``). This package is the only part of the code that reads the environment.

Every problem names the app and the field (``apps[2] (acme).tenantId: ...``);
all problems are reported at once, and nothing starts on a bad document.
Secrets are never values here: identities name the setting or Key Vault
secret that holds them. See docs/configuration.md.

- settings.py: the frozen dataclasses the code reads (``MonitorConfig``, ``AppConfig``...);
- document.py: the document's pydantic models, its checks, its JSON Schema
  (docs/config.schema.json; ``python -m sso_monitor.config --schema`` prints it), and
  the step from a checked document to the settings. It is imported on the first
  parse, so modules that only need the types do not load pydantic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .settings import (
    DEFAULT_API_BASE,
    DEFAULT_THRESHOLDS,
    ENV_CONFIG,
    MAX_DOCUMENT_CHARS,
    PUBLIC_AUTHORITY,
    PUBLIC_GRAPH,
    TENANT_SIZES,
    AdminApiConfig,
    AlertsConfig,
    AppConfig,
    ChannelConfig,
    CloudConfig,
    HandoffConfig,
    IdentityConfig,
    MonitorConfig,
    NetworkConfig,
    RotationPolicy,
    SignInsConfig,
    StorageConfig,
    VerifyConfig,
    deployment_id,
)

__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_THRESHOLDS",
    "ENV_CONFIG",
    "MAX_DOCUMENT_CHARS",
    "PUBLIC_AUTHORITY",
    "PUBLIC_GRAPH",
    "TENANT_SIZES",
    "AdminApiConfig",
    "AlertsConfig",
    "AppConfig",
    "ChannelConfig",
    "CloudConfig",
    "ConfigError",
    "HandoffConfig",
    "IdentityConfig",
    "MonitorConfig",
    "NetworkConfig",
    "RotationPolicy",
    "SignInsConfig",
    "StorageConfig",
    "VerifyConfig",
    "deployment_id",
    "load_config",
    "parse_config",
]


def load_config(source: str | Path | None = None, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    """Load from a path, a JSON text, or (source None) the SSO_MONITOR_CONFIG setting."""
    env = os.environ if environ is None else environ
    if source is None:
        source = env.get(ENV_CONFIG)
        if not source:
            raise ConfigError([f"no configuration: pass --config FILE or set {ENV_CONFIG} (a path or the JSON itself)"])
    text = str(source)
    if isinstance(source, Path) or not text.lstrip().startswith("{"):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read the configuration file ({exc.strerror or exc})"]) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
        origin = str(path)
    else:
        origin = ENV_CONFIG
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ConfigError([f"{origin}: the configuration is larger than {MAX_DOCUMENT_CHARS // 1_000_000} MB"])
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    except RecursionError:
        raise ConfigError([f"{origin}: nested too deeply to be a configuration"]) from None
    return parse_config(document, env)


def parse_config(document: Any, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    """The settings a parsed JSON document describes; ConfigError lists every problem."""
    from .document import settings_of  # pydantic loads here, on the first parse

    return settings_of(document, os.environ if environ is None else environ)
