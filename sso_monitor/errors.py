"""One exception tree. Adapters translate SDK errors into these with
``raise ... from``; the core and the entry points see nothing else.

Messages carry ids (app id, key id, secret name), never secret values.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of everything the monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration cannot be used; ``problems`` each name the app and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class ExternalError(MonitorError):
    """A call to Graph, Entra, Key Vault, SmartTrace or a channel failed."""

    def __init__(self, service: str, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
        self.code = code


class NotFound(ExternalError):
    """The object does not exist (or is invisible to us)."""


class AccessDenied(ExternalError):
    """We are authenticated but not allowed (403), or our own identity is refused."""


class Throttled(ExternalError):
    """Still throttled after honouring Retry-After as often as we allow."""

    def __init__(self, service: str, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(service, message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class TransientError(ExternalError):
    """A timeout, a dropped connection or a 5xx that outlasted our retries."""


class LifetimeExceedsPolicy(ExternalError):
    """addPassword refused the end date: CredentialInvalidLifetimeAsPerAppPolicy.
    ``policy_id``: the refusing policy, as Graph's message names it (the tenant
    default's id is 00000000-0000-0000-0000-000000000000), when it does."""

    def __init__(self, service: str, message: str, *, policy_id: str | None = None, **kwargs: object) -> None:
        super().__init__(service, message, **kwargs)  # type: ignore[arg-type]
        self.policy_id = policy_id


class AnswerLost(TransientError):
    """The request may or may not have taken effect (timeout, dropped connection)."""


class HandoffRejected(ExternalError):
    """SmartTrace refused the pushed secret (its answer's code is in ``code``)."""


class LeaseUnavailable(MonitorError):
    """Another run holds this app's lease."""
