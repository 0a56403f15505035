"""A Teams Workflows webhook ("When a Teams webhook request is received").

    POST /workflows/<id>/triggers/manual/paths/invoke?api-version=...&sig=...
    POST /powerautomate/automations/direct/workflows/<id>/triggers/manual/paths/invoke?...

The body is the webhook envelope Teams documents:
``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": {card}}]}``.

Answers, in the order they are checked:

- 400 ``MissingApiVersionParameter`` without ``api-version``;
- 401 ``DirectApiAuthorizationRequired`` without ``sig`` (any value is accepted);
- 404 ``WorkflowNotFound`` for an unknown webhook id;
- 413 with Teams' text ("... returned HTTP error 413 ...") above 28 KB;
- 415 ``UnsupportedMediaType`` unless ``Content-Type: application/json``;
- 400 ``InvalidRequestContent`` for invalid JSON or a malformed envelope;
- by ``TeamsWebhook.mode``: ``ok`` -> 202, empty body, payload appended to
  ``webhook.received``; ``throttled`` -> 200 with "Microsoft Teams endpoint
  returned HTTP error 429 ..." in a text body; ``error`` -> 500.
- in ``ok`` mode, beyond the rate limit (fixed windows, real time, per
  webhook; default 4 per second): 200 with the 429 text, as in ``throttled``.

Only 202 answers are deliveries. Everything else that got past the 404 is
listed (metadata only, never the payload) in ``TeamsService.undelivered``.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from sso_sandbox.faults import FaultPlan
from sso_sandbox.http import HttpError, Request, Response, Service
from sso_sandbox.world import TeamsWebhook, World

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
MAX_PAYLOAD_BYTES = 28 * 1024  # Teams' documented message size limit
DEFAULT_RATE_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 4),)  # (window seconds, max requests)


def teams_failure_text(status: int) -> str:
    """The text a Teams webhook answers when delivery into the channel failed."""
    context = f"tcid=0,server=msgapi-production-weu-azsc2-4-{secrets.randbelow(200)},cv={secrets.token_urlsafe(16)}.0"
    return f"Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error {status} with ContextId {context}.."


class TeamsService(Service):
    name = "teams"

    # (window_seconds, max_requests) per webhook; None or () disables rate limiting.
    rate_limits: tuple[tuple[float, int], ...] | None = DEFAULT_RATE_LIMITS

    def __init__(self, world: World, faults: FaultPlan) -> None:
        super().__init__(world, faults)
        self.rate_limits = type(self).rate_limits
        self.monotonic: Callable[[], float] = time.monotonic  # replaceable in tests
        self.undelivered: list[dict[str, Any]] = []  # {"webhook", "at", "status", "reason"}
        self._windows: dict[tuple[str, float], list[float]] = {}  # (webhook, window) -> [start, count]
        invoke = r"/workflows/(?P<workflow>[^/]+)/triggers/manual/paths/invoke"
        self.route("POST", invoke, self.invoke)
        self.route("POST", r"/powerautomate/automations/direct" + invoke, self.invoke)

    @property
    def rate_limit_per_second(self) -> int | None:
        for window, limit in self.rate_limits or ():
            if window == 1.0:
                return limit
        return None

    @rate_limit_per_second.setter
    def rate_limit_per_second(self, value: int | None) -> None:
        others = tuple(rule for rule in (self.rate_limits or ()) if rule[0] != 1.0)
        self.rate_limits = ((1.0, value),) + others if value is not None else others

    def reset_rate_limits(self) -> None:
        self._windows.clear()

    # ---- the trigger

    def invoke(self, request: Request, workflow: str) -> Response:
        if not request.q("api-version"):
            raise HttpError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
        if not request.q("sig"):
            raise HttpError(401, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme.")
        hook = self.world.webhooks.get(workflow)
        if hook is None:
            raise HttpError(404, "WorkflowNotFound", f"The workflow '{workflow}' could not be found.")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return self._undelivered(hook, 413, "too_large", Response.text(413, teams_failure_text(413)))
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return self._undelivered(
                hook, 415, "unsupported_media_type", self.error_response(415, "UnsupportedMediaType", "The request content type must be 'application/json'.")
            )
        payload = self._envelope(request.body, hook)
        if hook.mode == "throttled":
            return self._undelivered(hook, 200, "throttled", Response.text(200, teams_failure_text(429)))
        if hook.mode != "ok":
            return self._undelivered(hook, 500, f"mode:{hook.mode}", self.error_response(500, "InternalServerError", "The workflow run failed to start."))
        if self._over_limit(hook.id):
            return self._undelivered(hook, 200, "rate_limited", Response.text(200, teams_failure_text(429)))
        hook.received.append(payload)
        return Response.empty(
            202,
            {
                "x-ms-workflow-run-id": uuid.uuid4().hex[:24].upper(),
                "x-ms-correlation-id": str(uuid.uuid4()),
                "x-ms-workflow-name": hook.id,
            },
        )

    def _envelope(self, body: bytes, hook: TeamsWebhook) -> dict[str, Any]:
        def bad(message: str) -> HttpError:
            self.undelivered.append({"webhook": hook.id, "at": self.world.now(), "status": 400, "reason": "invalid_request"})
            return HttpError(400, "InvalidRequestContent", message)

        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise bad("The request content is not valid JSON.") from None
        if not isinstance(payload, dict):
            raise bad("The request content must be a JSON object.")
        if payload.get("type") != "message":
            raise bad("The 'type' property must be 'message'.")
        attachments = payload.get("attachments")
        if not isinstance(attachments, list) or not attachments:
            raise bad("The 'attachments' property must be a non-empty array.")
        for index, attachment in enumerate(attachments):
            where = f"attachments[{index}]"
            if not isinstance(attachment, dict):
                raise bad(f"'{where}' must be an object.")
            if attachment.get("contentType") != ADAPTIVE_CARD:
                raise bad(f"'{where}.contentType' must be '{ADAPTIVE_CARD}'.")
            if attachment.get("contentUrl") is not None and not isinstance(attachment.get("contentUrl"), str):
                raise bad(f"'{where}.contentUrl' must be a string or null.")
            card = attachment.get("content")
            if not isinstance(card, dict):
                raise bad(f"'{where}.content' must be an Adaptive Card object.")
            if card.get("type") != "AdaptiveCard":
                raise bad(f"'{where}.content.type' must be 'AdaptiveCard'.")
            if not isinstance(card.get("version"), str):
                raise bad(f"'{where}.content.version' is required.")
            if "body" in card and not isinstance(card["body"], list):
                raise bad(f"'{where}.content.body' must be an array.")
        return payload

    def _over_limit(self, hook_id: str) -> bool:
        rules = self.rate_limits or ()
        if not rules:
            return False
        now = self.monotonic()
        states = []
        for window, limit in rules:
            state = self._windows.setdefault((hook_id, window), [now, 0])
            if now - state[0] >= window:
                state[0], state[1] = now, 0
            if state[1] >= limit:
                return True
            states.append(state)
        for state in states:
            state[1] += 1
        return False

    def _undelivered(self, hook: TeamsWebhook, status: int, reason: str, response: Response) -> Response:
        self.undelivered.append({"webhook": hook.id, "at": self.world.now(), "status": status, "reason": reason})
        return response
