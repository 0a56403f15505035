"""Telemetry (sso_monitor/adapters/telemetry.py): a check and a rotation through the
application service, against the sandbox, with the OpenTelemetry SDK's in-memory metric
reader and log exporter in place of Azure Monitor's. The metrics and log records carry
the dimensions an alert rule or a workbook needs (infra/app/alerts.bicep), and no secret."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sso_monitor.adapters import telemetry
from sso_monitor.config import parse_config
from sso_monitor.models import days_until
from sso_monitor.service import MonitorService
from sso_sandbox.settings import monitor_document
from tests.checks import DEMO_FINDINGS
from tests.rotation.harness import FAST, Harness, config_for

IDS = ("facility", "tenant", "appId")
# The SDK's LoggingHandler is deprecated for opentelemetry-instrumentation-logging's (docs/decisions.md).
pytestmark = pytest.mark.filterwarnings("ignore:`LoggingHandler`:DeprecationWarning")


@dataclass
class Captured:
    reader: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]
        return found

    def records(self) -> list[tuple[dict[str, Any], str]]:
        found = []
        for item in self.logs.get_finished_logs():
            record = getattr(item, "log_record", item)
            found.append((dict(record.attributes or {}), str(record.body)))
        return found


@pytest.fixture
def captured() -> Iterator[Captured]:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemoryLogRecordExporter()
    logs = LoggerProvider()
    logs.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    handler = LoggingHandler(logger_provider=logs)
    logger = logging.getLogger(telemetry.LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    telemetry.use_meter_provider(meters)
    try:
        yield Captured(reader, exporter)
    finally:
        telemetry.use_meter_provider(None)
        logger.removeHandler(handler)
        logger.setLevel(level)
        meters.shutdown()
        logs.shutdown()


def no_secret_in(captured: Captured, secrets: list[str]) -> None:
    texts = [body for _, body in captured.records()]
    for name in (telemetry.DAYS_LEFT, telemetry.FINDINGS, telemetry.ROTATION_STAGE):
        texts += [str(attributes) for attributes, _ in captured.points(name)]
    texts += [str(attributes) for attributes, _ in captured.records()]
    assert texts and secrets
    assert not [secret for secret in secrets if any(secret in text for text in texts)], "a secret value reached the telemetry"


def test_a_check_emits_days_left_and_findings_per_facility_with_their_dimensions(scenario_sandbox, captured: Captured) -> None:
    document, environ = monitor_document(scenario_sandbox)
    config = parse_config(document, environ)
    now = scenario_sandbox.world.now()
    report = asyncio.run(MonitorService(config).check(now))
    apps = {r.app.facility: r for r in report.results}
    assert set(apps) == set(DEMO_FINDINGS)

    days = {attributes["facility"]: (attributes, value) for attributes, value in captured.points(telemetry.DAYS_LEFT)}
    assert set(days) == {f for f, r in apps.items() if r.secret_expires}
    for facility, (attributes, value) in days.items():
        app = apps[facility].app
        assert attributes == {"facility": facility, "tenant": app.tenant_id, "appId": app.app_id}
        assert value == days_until(apps[facility].secret_expires, now)
    assert days["harbor"][1] in (11, 12) and days["valley"][1] < 0  # as the status document says (tests/test_service.py)

    findings = captured.points(telemetry.FINDINGS)
    counted = sorted((a["facility"], a["code"]) for a, value in findings for _ in range(value))
    assert counted == sorted((f, code) for f, codes in DEMO_FINDINGS.items() for code in codes)
    for attributes, _ in findings:
        app = apps[attributes["facility"]].app
        assert attributes["tenant"] == app.tenant_id and attributes["appId"] == app.app_id
        assert attributes["severity"] in ("info", "warning", "critical", "error")
    assert ("valley", "SECRET_EXPIRED", "critical") in {(a["facility"], a["code"], a["severity"]) for a, _ in findings}

    records = captured.records()
    for facility, app in ((f, r.app) for f, r in apps.items()):
        mine = [attributes for attributes, _ in records if attributes.get("facility") == facility]
        assert mine, f"no log record for {facility}"
        assert all(a["tenant"] == app.tenant_id and a["appId"] == app.app_id for a in mine)
        assert sorted(a["code"] for a in mine if "code" in a) == sorted(DEMO_FINDINGS[facility])
    no_secret_in(captured, list(scenario_sandbox.world.issued_secrets))


def test_a_rotation_emits_its_stage_with_the_apps_dimensions(sandbox, tmp_path, captured: Captured) -> None:
    harness = Harness(sandbox, config_for(sandbox), tmp_path / "locks")
    service = harness.service()
    outcome = asyncio.run(service.rotate(harness.app, settings=FAST, force=True))  # a new secret, handed off by hand
    assert outcome.result.failure is None and outcome.result.key_id and outcome.result.stage not in ("idle", "current")
    app = harness.app
    dims = {"facility": app.facility, "tenant": app.tenant_id, "appId": app.app_id}

    assert captured.points(telemetry.ROTATION_STAGE) == [({**dims, "stage": outcome.result.stage}, 1)]
    staged = [attributes for attributes, _ in captured.records() if "stage" in attributes]
    assert staged and all({key: attributes.get(key) for key in (*IDS, "stage")} == {**dims, "stage": outcome.result.stage} for attributes in staged)
    no_secret_in(captured, list(sandbox.world.issued_secrets))


def test_nothing_is_configured_without_the_connection_string() -> None:
    assert telemetry.configure({}) is False
    assert telemetry.configure({"APPLICATIONINSIGHTS_CONNECTION_STRING": ""}) is False


def test_the_authentication_string_selects_the_managed_identity() -> None:
    assert telemetry._credential("") is None
    assert telemetry._credential("InstrumentationKey=x") is None
    credential = telemetry._credential("ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD")
    assert type(credential).__name__ == "ManagedIdentityCredential"


def test_records_with_dimensions_reach_application_insights_once() -> None:
    """Once exported, the dimension records go through the exporter only, not also up to the
    root logger, where the Functions host forwards them again without their dimensions;
    every other record of the package still goes up, once."""

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.seen.append(record.name)

    exporter, host = Collect(), Collect()
    logger, root = logging.getLogger(telemetry.LOGGER), logging.getLogger()
    before = (logger.propagate, logger.level, root.level)
    root.addHandler(host)
    root.setLevel(logging.INFO)
    try:
        telemetry.route_dimension_records(exporter)
        logger.info("acme: warning finding SECRET_EXPIRING", extra={"facility": "acme"})
        logging.getLogger("sso_monitor.checks.run").info("an ordinary line")
        assert exporter.seen == [telemetry.LOGGER]
        assert host.seen == ["sso_monitor.checks.run"]
    finally:
        logger.removeHandler(exporter)
        root.removeHandler(host)
        logger.propagate, _, _ = before
        root.setLevel(before[2])
