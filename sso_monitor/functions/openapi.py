"""The admin API's OpenAPI 3.1 document (served at GET /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from sso_monitor.functions.bounds import ROTATE_ANSWER_WITHIN, ROTATE_VERIFY_DEADLINE
from sso_monitor.functions.ratelimit import LIMITS

_ERROR = {"$ref": "#/components/responses/Error"}
_FACILITY = {"name": "facility", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}}


def _errors(*codes: str) -> dict[str, Any]:
    return dict.fromkeys(codes, _ERROR)


def _rate(kind: str) -> str:
    limit = LIMITS[kind]
    return f"{limit.capacity} per {limit.period:g} s"


_RATE_LIMITED = {
    "429": {
        "description": "Too many calls of this kind from this caller: wait Retry-After seconds (the limit is per caller and per instance)",
        "headers": {"Retry-After": {"description": "seconds until a call is allowed again", "schema": {"type": "integer", "minimum": 1}}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}
_LOCATION = {"description": "GET /apps/{facility}/rotation: where the rotation stands", "schema": {"type": "string"}}


def openapi_document() -> dict[str, Any]:
    secured: list[dict[str, list[str]]] = [{"functionKey": [], "entra": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SmartTrace SSO Monitor admin API",
            "version": "1",
            "description": (
                "Status, checks and rotations of SmartTrace's Entra ID app registrations. Every call needs the function key and an Entra ID bearer token: "
                "role SsoMonitor.Read for reads, SsoMonitor.Admin for actions. No answer ever contains a secret value. "
                "Every answer has the style of the CLI's --json output: camelCase keys (in a finding's details too), "
                "times in ISO 8601 UTC with whole seconds (2026-12-06T02:13:03Z). "
                "The status is the last scheduled run's report (generatedAt; stale when older than twice the timer's interval), not a live check: "
                "POST /apps/{facility}/check checks one app now. "
                f"Rate limits, per caller (the token's oid) and per Function App instance: reads {_rate('read')}, the live check {_rate('check')}, "
                f"actions {_rate('action')}; past them a 429 with Retry-After. "
                "A rotation still in flight when rotate answers (the new secret not yet propagated, or the run still going) is a 202 "
                "whose Location is GET /apps/{facility}/rotation."
            ),
        },
        "servers": [{"url": "/api"}],
        "components": {
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "entra": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "responses": {
                "Error": {
                    "description": "An error, with a code and a message",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
                    },
                },
                "Finding": {
                    "type": "object",
                    "required": ["code", "severity", "message", "fix"],
                    "properties": {
                        "code": {"type": "string"},
                        "severity": {"enum": ["info", "warning", "critical", "error"]},
                        "message": {"type": "string"},
                        "fix": {"type": "string", "description": "what to do, naming this app's facility, URLs and ids"},
                        "details": {"type": "object", "description": "the finding's facts, camelCase keys (e.g. daysLeft, keyId, expected, url)"},
                    },
                },
                "AppStatus": {
                    "type": "object",
                    "required": ["facility", "tenantId", "appId", "status", "findings", "rotation"],
                    "properties": {
                        "facility": {"type": "string"},
                        "tenantId": {"type": "string"},
                        "appId": {"type": "string"},
                        "status": {
                            "enum": ["ok", "warning", "critical", "error", "unknown"],
                            "description": "unknown: not checked yet (no run since it was configured)",
                        },
                        "secretExpires": {
                            "type": ["string", "null"],
                            "format": "date-time",
                            "description": "when the client secret SmartTrace uses ends (null: none found)",
                        },
                        "daysLeft": {"type": ["integer", "null"], "description": "whole days from the check to secretExpires; negative once past"},
                        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
                        "rotation": {
                            "type": "object",
                            "properties": {
                                "stage": {"type": "string"},
                                "currentKeyId": {"type": ["string", "null"]},
                                "inFlightKeyId": {"type": ["string", "null"]},
                                "retiring": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                },
                "Status": {
                    "type": "object",
                    "required": ["generatedAt", "stale", "apps"],
                    "properties": {
                        "generatedAt": {
                            "type": ["string", "null"],
                            "format": "date-time",
                            "description": "when the scheduled run that produced this report checked; null: no run has completed yet",
                        },
                        "stale": {
                            "type": "boolean",
                            "description": "older than twice the timer's longest interval (26 h when the schedule cannot be read), or no run yet",
                        },
                        "staleAfter": {"type": ["string", "null"], "format": "date-time"},
                        "message": {"type": "string", "description": "why it is stale, or that no run has completed yet"},
                        "summary": {"type": "object"},
                        "report": {"type": "object"},
                        "errors": {"type": "array", "items": {"type": "string"}},
                        "apps": {"type": "array", "items": {"$ref": "#/components/schemas/AppStatus"}},
                    },
                },
                "RotationStatus": {
                    "type": "object",
                    "required": ["facility", "stage", "inFlight"],
                    "properties": {
                        "facility": {"type": "string"},
                        "stage": {
                            "type": "string",
                            "description": "from Key Vault's tags: idle, current, pending, verified, awaiting-confirmation, handed-off",
                        },
                        "currentKeyId": {"type": ["string", "null"]},
                        "currentExpires": {"type": ["string", "null"], "format": "date-time"},
                        "inFlightKeyId": {"type": ["string", "null"]},
                        "inFlightSince": {"type": ["string", "null"], "format": "date-time"},
                        "retiring": {"type": "array", "items": {"type": "string"}},
                        "leaseHeld": {"type": ["boolean", "null"], "description": "a run holds the app's lease now (null: unknown)"},
                        "inFlight": {
                            "type": "boolean",
                            "description": "the rotation moves on by itself (pending, verified, handed-off) or a run holds the lease",
                        },
                        "checkedAt": {"type": "string", "format": "date-time"},
                    },
                },
                "Snooze": {
                    "type": "object",
                    "required": ["facility", "code", "until", "by"],
                    "properties": {
                        "facility": {"type": "string"},
                        "code": {"type": "string"},
                        "until": {"type": "string", "format": "date-time"},
                        "by": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
                "RotationEvent": {
                    "type": "object",
                    "required": ["kind", "facility", "tenantId", "appId", "message", "steps"],
                    "properties": {
                        "kind": {"type": "string", "description": "started, awaiting-confirmation, completed, failed, retired, ..."},
                        "facility": {"type": "string"},
                        "tenantId": {"type": "string"},
                        "appId": {"type": "string"},
                        "message": {"type": "string"},
                        "keyId": {"type": ["string", "null"]},
                        "steps": {"type": "array", "items": {"type": "string"}, "description": "a manual handoff's steps, in words"},
                        "severity": {"type": ["string", "null"], "description": "still-in-use: the finding's severity, over the kind's default"},
                        "code": {"type": ["string", "null"], "description": "the finding code the event carries (still-in-use: OLD_SECRET_STILL_IN_USE)"},
                    },
                },
                "RotationResult": {
                    "type": "object",
                    "required": ["facility", "stage", "keyId", "actions", "error", "events"],
                    "properties": {
                        "facility": {"type": "string"},
                        "stage": {"type": "string", "description": "running: rotate answered while the run goes on"},
                        "keyId": {"type": ["string", "null"], "description": "the rotation's new credential, when there is one"},
                        "actions": {"type": "array", "items": {"type": "string"}},
                        "error": {"type": ["string", "null"]},
                        "events": {"type": "array", "items": {"$ref": "#/components/schemas/RotationEvent"}},
                        "findings": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Finding"},
                            "description": "what Entra's records said during the run: OLD_SECRET_STILL_IN_USE, ACTIVITY_REPORT_UNAVAILABLE",
                        },
                        "alerts": {"type": "object"},
                        "statusUrl": {"type": "string", "description": "202 only: GET /apps/{facility}/rotation"},
                        "resume": {"enum": ["queued", "next-scheduled-run", "running"], "description": "202 only: what carries the rotation on"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
        "security": secured,
        "paths": {
            "/status": {
                "get": {
                    "summary": "Every app, its findings and rotation stage, as the last scheduled run found them",
                    "responses": {
                        "200": {
                            "description": "The stored status (cached up to a minute per instance)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
                        },
                        **_errors("401", "403", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/status/page": {
                "get": {
                    "summary": "The stored status as an HTML page with an expiry timeline (what /status/view shows once signed in)",
                    "description": "No function key: the status page (/status/view) calls it from the browser with the person's token.",
                    "security": [{"entra": []}],
                    "responses": {
                        "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                        **_errors("401", "403", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/status/view": {
                "get": {
                    "summary": "The status page people open from an alert: it signs them in with Microsoft (MSAL.js) and shows /status/page",
                    "description": "Holds no data; needs adminApi.clientId and the page's URL as a single-page-app redirect URI of the admin API's registration.",
                    "security": [],
                    "responses": {
                        "200": {"description": "HTML (scripts from /status/view/{name} only)", "content": {"text/html": {"schema": {"type": "string"}}}},
                        "503": {"description": "adminApi.clientId is not configured", "content": {"text/html": {"schema": {"type": "string"}}}},
                    },
                }
            },
            "/apps/{facility}/check": {
                "post": {
                    "summary": "Check one app now (live: Entra, Graph, Key Vault; the strictest rate limit)",
                    "parameters": [_FACILITY],
                    "responses": {
                        "200": {"description": "The app's status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AppStatus"}}}},
                        **_errors("400", "401", "403", "404", "413", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/apps/{facility}/rotation": {
                "get": {
                    "summary": "Where one app's rotation stands, from Key Vault's tags (follow a 202 of rotate here)",
                    "parameters": [_FACILITY],
                    "responses": {
                        "200": {
                            "description": "The rotation's status",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationStatus"}}},
                        },
                        **_errors("400", "401", "403", "404", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/apps/{facility}/rotate": {
                "post": {
                    "summary": "Run the rotation protocol for one app",
                    "parameters": [_FACILITY],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"dryRun": {"type": "boolean"}, "force": {"type": "boolean"}},
                                }
                            }
                        },
                    },
                    "description": (
                        f"Answers within Azure's 230 s limit for HTTP: the wait for the new secret to propagate is bounded ({ROTATE_VERIFY_DEADLINE:g} s), and so is the whole answer ({ROTATE_ANSWER_WITHIN:g} s). "
                        "A rotation still in flight then is a 202 with Location: waiting for propagation (the worker resumes it at once when the queue is reachable, "
                        "else the timer's next run), or still running in the Function App."
                    ),
                    "responses": {
                        "200": {
                            "description": "Where the rotation stands (a failure is in error)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}},
                        },
                        "202": {
                            "description": "Still in flight: follow statusUrl",
                            "headers": {"Location": _LOCATION, "Retry-After": {"description": "seconds before asking", "schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}},
                        },
                        **_errors("400", "401", "403", "404", "413", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/apps/{facility}/confirm": {
                "post": {
                    "summary": "Confirm SmartTrace holds the new secret (manual handoff)",
                    "parameters": [_FACILITY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["keyId"],
                                    "additionalProperties": False,
                                    "properties": {"keyId": {"type": "string", "format": "uuid"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The rotation finished",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}},
                        },
                        **_errors("400", "401", "403", "404", "409", "413", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/apps/{facility}/push": {
                "post": {
                    "summary": "Push the secret SmartTrace should hold to it again (http handoff mode)",
                    "parameters": [_FACILITY],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": {"type": "object", "additionalProperties": False, "properties": {"dryRun": {"type": "boolean"}}}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "What was pushed (ids only)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}},
                        },
                        **_errors("400", "401", "403", "404", "409", "413", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/apps/{facility}/snooze": {
                "post": {
                    "summary": "Silence alerts for one finding of one app until a date",
                    "parameters": [_FACILITY],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["code", "until"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "code": {"type": "string", "pattern": "^[A-Z][A-Z_]{1,40}$", "description": "a finding code (docs/checks.md)"},
                                        "until": {"type": "string", "description": "ISO 8601 date or date-time (UTC when no offset); at most 90 days ahead"},
                                        "reason": {"type": "string", "maxLength": 200},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "The snooze", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Snooze"}}}},
                        **_errors("400", "401", "403", "404", "413", "502", "503"),
                        **_RATE_LIMITED,
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [{"functionKey": []}],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
    }
