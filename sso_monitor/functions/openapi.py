"""The admin API's OpenAPI 3.1 document (served at GET /api/openapi.json)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
_FACILITY = {"name": "facility", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _ERROR for code in codes}


def openapi_document() -> dict[str, Any]:
    secured = [{"functionKey": [], "entra": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "SmartTrace SSO Monitor admin API", "version": "1", "description": "Status, checks and rotations of SmartTrace's Entra ID app registrations. Every call needs the function key and an Entra ID bearer token: role SsoMonitor.Read for reads, SsoMonitor.Admin for actions. No answer ever contains a secret value."},
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
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
                },
                "Finding": {
                    "type": "object",
                    "required": ["code", "severity", "message", "fix"],
                    "properties": {"code": {"type": "string"}, "severity": {"enum": ["info", "warning", "critical", "error"]}, "message": {"type": "string"}, "fix": {"type": "string"}, "details": {"type": "object"}},
                },
                "AppStatus": {
                    "type": "object",
                    "required": ["facility", "tenantId", "appId", "status", "findings", "rotation"],
                    "properties": {
                        "facility": {"type": "string"},
                        "tenantId": {"type": "string"},
                        "appId": {"type": "string"},
                        "status": {"enum": ["ok", "warning", "critical", "error"]},
                        "secretExpires": {"type": ["string", "null"], "format": "date-time"},
                        "daysLeft": {"type": ["integer", "null"]},
                        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
                        "rotation": {"type": "object"},
                    },
                },
                "Status": {
                    "type": "object",
                    "required": ["generatedAt", "apps"],
                    "properties": {"generatedAt": {"type": "string"}, "summary": {"type": "object"}, "errors": {"type": "array", "items": {"type": "string"}}, "apps": {"type": "array", "items": {"$ref": "#/components/schemas/AppStatus"}}},
                },
                "Snooze": {
                    "type": "object",
                    "required": ["facility", "code", "until", "by"],
                    "properties": {"facility": {"type": "string"}, "code": {"type": "string"}, "until": {"type": "string", "format": "date-time"}, "by": {"type": "string"}, "reason": {"type": "string"}},
                },
                "RotationResult": {
                    "type": "object",
                    "required": ["facility", "stage", "actions"],
                    "properties": {"facility": {"type": "string"}, "stage": {"type": "string"}, "key_id": {"type": ["string", "null"]}, "actions": {"type": "array", "items": {"type": "string"}}, "error": {"type": ["string", "null"]}, "events": {"type": "array"}},
                },
            },
        },
        "security": secured,
        "paths": {
            "/status": {"get": {"summary": "Every app, its findings and rotation stage", "responses": {"200": {"description": "Status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}}, **_errors("401", "403", "503")}}},
            "/status/page": {"get": {"summary": "The status as an HTML page with an expiry timeline", "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}, **_errors("401", "403", "503")}}},
            "/apps/{facility}/check": {"post": {"summary": "Check one app now", "parameters": [_FACILITY], "responses": {"200": {"description": "The app's status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AppStatus"}}}}, **_errors("400", "401", "403", "404", "413", "502", "503")}}},
            "/apps/{facility}/rotate": {
                "post": {
                    "summary": "Run the rotation protocol for one app",
                    "parameters": [_FACILITY],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": False, "properties": {"dryRun": {"type": "boolean"}, "force": {"type": "boolean"}}}}}},
                    "responses": {"200": {"description": "Where the rotation stands", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}}}, **_errors("400", "401", "403", "404", "413", "502", "503")},
                }
            },
            "/apps/{facility}/confirm": {
                "post": {
                    "summary": "Confirm SmartTrace holds the new secret (manual handoff)",
                    "parameters": [_FACILITY],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["keyId"], "additionalProperties": False, "properties": {"keyId": {"type": "string", "format": "uuid"}}}}}},
                    "responses": {"200": {"description": "The rotation finished", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}}}, **_errors("400", "401", "403", "404", "409", "413", "502", "503")},
                }
            },
            "/apps/{facility}/push": {
                "post": {
                    "summary": "Push the secret SmartTrace should hold to it again (http handoff mode)",
                    "parameters": [_FACILITY],
                    "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": False, "properties": {"dryRun": {"type": "boolean"}}}}}},
                    "responses": {"200": {"description": "What was pushed (ids only)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RotationResult"}}}}, **_errors("400", "401", "403", "404", "409", "413", "502", "503")},
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
                    "responses": {"200": {"description": "The snooze", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Snooze"}}}}, **_errors("400", "401", "403", "404", "413", "502", "503")},
                }
            },
            "/openapi.json": {"get": {"summary": "This document", "security": [{"functionKey": []}], "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
    }
