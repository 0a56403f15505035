"""Telemetry where Azure users look: OpenTelemetry metrics and log dimensions, exported to
Application Insights when the Function App has its connection string.

Two halves:

- The recorder (``record_check``, ``record_rotation``): called by the service after each
  check of an app and each rotation run, with plain values (ids, codes, stages; never a
  secret). It sets the metrics through the OpenTelemetry API only, which does nothing
  until a provider is configured, and writes one log record per app, finding and run
  whose ``extra`` attributes (facility, tenant, appId, stage, code) become the record's
  dimensions (customDimensions in Application Insights). The records are INFO (an app
  that is ok, DEBUG): the findings and failures are said elsewhere already, and the
  CLI, which shows WARNING and up, shows no more than it did.
- ``configure``: when APPLICATIONINSIGHTS_CONNECTION_STRING is set, the OpenTelemetry SDK
  with Azure Monitor's exporters (azure-monitor-opentelemetry-exporter) is set up once
  for the process: metrics, and the ``sso_monitor`` loggers' records with their
  dimensions. With
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING ``Authorization=AAD`` (infra/app/function.bicep)
  it sends with the managed identity, as the Functions host does. Without the setting
  nothing is imported.

The metrics (docs/deploy.md, "Telemetry"):

- ``sso_monitor.secret.days_left`` (gauge, days): whole days until the secret SmartTrace
  uses ends, per app (facility, tenant, appId); negative once it has ended.
- ``sso_monitor.findings`` (counter): each finding of each check or rotation run, with
  facility, tenant, appId, severity, code (and stage, for a rotation's findings).
- ``sso_monitor.rotation.stage`` (counter): each rotation run, with facility, tenant,
  appId and the stage it left the app at.

OpenTelemetry is imported on first use, not with this module: ``import function_app``
stays as fast as it was (tests/test_packaging.py, bench/).
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from sso_monitor.checks.findings import Finding

log = logging.getLogger(__name__)

METER = "sso_monitor"
DAYS_LEFT = "sso_monitor.secret.days_left"
FINDINGS = "sso_monitor.findings"
ROTATION_STAGE = "sso_monitor.rotation.stage"
# The logger whose records carry dimensions (this module's). Once the export is set up they
# go to Application Insights through it alone: not also through the Functions host, which
# forwards every other record of the worker (without dimensions), so none arrives twice.
LOGGER = __name__

_lock = threading.Lock()
_instruments: dict[str, Any] | None = None
_meter_provider: Any = None  # None: the global provider (the API's no-op until one is set)
_configured = False


def dimensions(facility: str, tenant: str, app_id: str, **more: str | None) -> dict[str, str]:
    """The attributes of a metric point or a log record: the app's ids, and ``more``
    (stage, code, severity) where known."""
    found = {"facility": facility, "tenant": tenant, "appId": app_id}
    found.update({key: str(value) for key, value in more.items() if value is not None})
    return found


def use_meter_provider(provider: Any) -> None:
    """Record on ``provider`` from now on (None: the global one). For tests: an SDK
    MeterProvider with an in-memory reader."""
    global _instruments, _meter_provider
    with _lock:
        _meter_provider, _instruments = provider, None


def _get_instruments() -> dict[str, Any]:
    global _instruments
    with _lock:
        if _instruments is None:
            from opentelemetry.metrics import get_meter_provider

            meter = (_meter_provider or get_meter_provider()).get_meter(METER)
            _instruments = {
                DAYS_LEFT: meter.create_gauge(DAYS_LEFT, unit="d", description="Whole days until the client secret SmartTrace uses ends"),
                FINDINGS: meter.create_counter(FINDINGS, unit="{finding}", description="Findings of the check and rotation runs, by severity and code"),
                ROTATION_STAGE: meter.create_counter(ROTATION_STAGE, unit="{run}", description="Rotation runs, by the stage each left the app at"),
            }
        return _instruments


def _findings(ids: dict[str, str], findings: Sequence[Finding], stage: str | None, instruments: dict[str, Any]) -> None:
    for found in findings:
        severity = found.severity.value
        attributes = dimensions(ids["facility"], ids["tenant"], ids["appId"], severity=severity, code=found.code, stage=stage)
        instruments[FINDINGS].add(1, attributes)
        log.info("%s: %s finding %s", ids["facility"], severity, found.code, extra=_extra(attributes))


def _extra(attributes: Mapping[str, str]) -> dict[str, str]:
    """A log record's ``extra``: the dimensions, each a plain string attribute."""
    return dict(attributes)


def record_check(facility: str, tenant: str, app_id: str, *, days_left: int | None, status: str, findings: Sequence[Finding]) -> None:
    """One app's check: its secret's days left, its findings, and a record of its status."""
    instruments = _get_instruments()
    ids = dimensions(facility, tenant, app_id)
    if days_left is not None:
        instruments[DAYS_LEFT].set(days_left, ids)
    # an app that is fine at DEBUG: the host sends Information and up, and a thousand apps a day add up
    level = logging.DEBUG if status == "ok" else logging.INFO
    log.log(level, "%s: checked, %s", facility, status, extra=_extra(dimensions(facility, tenant, app_id, status=status)))
    _findings(ids, findings, None, instruments)


def record_rotation(facility: str, tenant: str, app_id: str, *, stage: str, failed: bool, findings: Sequence[Finding]) -> None:
    """One rotation run: the stage it left the app at, and its findings."""
    instruments = _get_instruments()
    ids = dimensions(facility, tenant, app_id)
    attributes = dimensions(facility, tenant, app_id, stage=stage)
    instruments[ROTATION_STAGE].add(1, attributes)
    log.info("%s: rotation at stage %s%s", facility, stage, " (failed)" if failed else "", extra=_extra(attributes))
    _findings(ids, findings, stage, instruments)


# ---------------------------------------------------------------- export to Application Insights


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Set up the export to Application Insights once per process, when
    APPLICATIONINSIGHTS_CONNECTION_STRING is set; answers whether it is set up.

    The SDK's meter provider (Azure Monitor's metric exporter, every 60 s and at exit)
    becomes the global one, and the records with dimensions (this module's logger) go
    through Azure Monitor's log exporter, and only there (``route_dimension_records``). No tracing:
    the Functions host already records the invocations and their calls."""
    global _configured
    env = os.environ if environ is None else environ
    connection = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
    with _lock:
        if _configured or not connection:
            return _configured
        from azure.monitor.opentelemetry.exporter import AzureMonitorLogExporter, AzureMonitorMetricExporter
        from opentelemetry.metrics import set_meter_provider
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource

        options: dict[str, Any] = {"connection_string": connection}
        credential = _credential(env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""))
        if credential is not None:
            options["credential"] = credential
        resource = Resource.create({"service.name": "sso-monitor"})  # the cloud role name in Application Insights
        set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(AzureMonitorMetricExporter(**options))], resource=resource))
        logs = LoggerProvider(resource=resource)
        logs.add_log_record_processor(BatchLogRecordProcessor(AzureMonitorLogExporter(**options)))
        with warnings.catch_warnings():  # deprecated for opentelemetry-instrumentation-logging's, one more dependency (docs/decisions.md)
            warnings.simplefilter("ignore", DeprecationWarning)
            handler = LoggingHandler(logger_provider=logs)
        route_dimension_records(handler)
        _configured = True
    use_meter_provider(None)  # instruments made before come from the configured provider
    return True


def route_dimension_records(handler: logging.Handler) -> None:
    """The records with dimensions go to ``handler`` (the exporter) and no further: the
    host's handler on the root logger would send them again, without their dimensions.
    Every other record goes on through the host, once."""
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    logger.propagate = False


def _credential(authentication: str) -> Any:
    """``Authorization=AAD;ClientId=<id>``: the managed identity (the user-assigned one
    when a client id is given); anything else: the connection string alone."""
    parts = dict(part.split("=", 1) for part in authentication.split(";") if "=" in part)
    if parts.get("Authorization", "").strip().upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId", "").strip()
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
