"""Email: a notice as one RFC 5322 message (plain text and HTML), sent through
Microsoft Graph's sendMail or an SMTP submission server.

``GraphMailChannel`` posts the MIME form of sendMail (``Content-Type:
text/plain``, the message in base64) as the home tenant's identity, which
needs the Mail.Send application permission, best scoped to the one mailbox
with an application access policy. 202 is a delivery.

``SmtpChannel`` submits with STARTTLS (required: no password crosses the
network in clear) and AUTH when a username is configured, the password read
from Key Vault for each notice and never kept, logged or raised.

Both retry what may pass (throttling with Retry-After, 5xx, 4xx SMTP replies,
timeouts, lost connections) with delivery.py's backoff; a refusal (4xx HTTP,
5xx SMTP) is ``ChannelError(transient=False)``. Recipients: the channel's
``to``, then the notice's own, then, for an app with ``notifyOwners``, its Entra
owners' mail addresses (read from Graph as the notice is sent), each once, in that
order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import AzureError, ClientAuthenticationError

from sso_monitor.adapters.channels.delivery import Retryable, RetryPolicy, Sleep, deliver, http_post, refuse
from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.adapters.http import session_with_host_map
from sso_monitor.alerts.ports import ChannelError, Notice, OwnerAddresses, SecretSource
from sso_monitor.alerts.render import email_message
from sso_monitor.config import ChannelConfig, MonitorConfig
from sso_monitor.errors import AccessDenied, ConfigError, ExternalError, NotFound
from sso_monitor.models import SecretValue

log = logging.getLogger(__name__)

_DETAIL_LIMIT = 200


def recipients_for(channel: ChannelConfig, notice: Notice, owners: tuple[str, ...] = ()) -> list[str]:
    """The channel's recipients, then the notice's, then the app owners', each address once (case-insensitive)."""
    seen: set[str] = set()
    ordered: list[str] = []
    for address in (*channel.to, *notice.recipients, *owners):
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            ordered.append(address.strip())
    return ordered


async def owner_addresses(owners: OwnerAddresses | None, notice: Notice) -> tuple[str, ...]:
    """The mail addresses of the owners of the apps whose alerts go to their owners here."""
    if owners is None or not notice.owners_of:
        return ()
    found: list[str] = []
    for tenant_id, app_id in notice.owners_of:
        found += await owners.addresses(tenant_id, app_id)
    return tuple(found)


def _message(channel: ChannelConfig, notice: Notice, sender: str, owners: tuple[str, ...] = ()) -> tuple[EmailMessage, list[str]]:
    recipients = recipients_for(channel, notice, owners)
    if not recipients:
        raise ChannelError(channel.name, "no recipients: set the channel's to, or the facility's contacts", transient=False)
    return email_message(notice, sender, recipients, date=datetime.now(UTC)), recipients


# ---------------------------------------------------------------- Graph


class GraphMailChannel:
    """AlertChannel on Graph's ``POST /users/{mailbox}/sendMail``, MIME form."""

    kind = "graph-mail"

    def __init__(
        self,
        config: MonitorConfig,
        channel: ChannelConfig,
        *,
        credential: Any = None,
        sleep: Sleep = asyncio.sleep,
        attempts: int = 5,
        owners: OwnerAddresses | None = None,
    ) -> None:
        if not channel.mailbox:
            raise ValueError(f"channel {channel.name}: a graph-mail channel needs mailbox")
        self.name = channel.name
        self.channel = channel
        self.config = config
        self._credential = credential  # else built on the first send: no import or network before
        self._own_credential = credential is None
        self._sleep = sleep
        self._policy = RetryPolicy(attempts=attempts)
        network = config.network
        self._timeout = network.timeout_seconds
        self._connect_timeout = network.connect_timeout
        self._session = session_with_host_map(dict(network.host_map), network.ca_bundle, trust_env=network.use_env_proxies)
        self._url = f"{config.cloud.graph_endpoint.rstrip('/')}/users/{quote(channel.mailbox, safe='@')}/sendMail"
        self._owners = owners  # the apps' owners' addresses (notifyOwners)

    async def send(self, notice: Notice) -> None:
        assert self.channel.mailbox is not None
        message, recipients = _message(self.channel, notice, self.channel.mailbox, await owner_addresses(self._owners, notice))
        body = base64.b64encode(message.as_bytes(policy=policy.SMTP))
        if self._credential is None:  # here, on the loop: concurrent sends share one credential (and its token cache)
            try:
                self._credential = credential_for(self.config, self.config.home_tenant_id)
            except ConfigError as exc:
                raise ChannelError(self.name, f"no identity to send with: {exc}", transient=False) from exc

        async def attempt() -> None:
            await asyncio.to_thread(self._post, body)

        attempts = await deliver(self.name, attempt, policy=self._policy, sleep=self._sleep)
        log.info(
            "channel %s: notice %s sent from %s to %d recipient(s) (%d attempt(s))", self.name, notice.id[:12], self.channel.mailbox, len(recipients), attempts
        )

    async def aclose(self) -> None:
        self._session.close()
        if self._owners is not None:
            await self._owners.aclose()
        credential, self._credential = self._credential, None
        close = getattr(credential, "close", None)
        if self._own_credential and close is not None:
            await asyncio.to_thread(close)

    # ---- blocking parts, run in a worker thread

    def _post(self, body: bytes) -> None:
        headers = {"Authorization": f"Bearer {self._token()}", "Content-Type": "text/plain", "Accept": "application/json"}
        answer = http_post(self.name, self._session, self._url, body=body, headers=headers, timeout=self._timeout, connect_timeout=self._connect_timeout)
        if answer.status == 202:
            return
        refuse(self.name, answer.status, f"Graph answered HTTP {answer.status}{_graph_error(answer.text)}", answer.retry_after)

    def _token(self) -> str:
        failure: AzureError | None = None
        try:
            return str(self._credential.get_token(self.config.cloud.graph_scope).token)
        except AzureError as exc:
            failure = exc
        assert failure is not None
        kind, refused = type(failure).__name__, _identity_refused(failure)
        failure = None
        if refused:
            raise ChannelError(self.name, f"Entra refused the monitor's identity for Graph ({kind})", transient=False)
        raise Retryable(f"getting a Graph token failed ({kind})")


def _identity_refused(exc: AzureError) -> bool:
    """Entra answered and said no (an AADSTS code, 400/401/403); anything else may pass."""
    if not isinstance(exc, ClientAuthenticationError):
        return False
    status = exc.status_code or (exc.response.status_code if exc.response is not None else None)
    return status in (400, 401, 403) or "AADSTS" in str(exc.message or "")


def _graph_error(text: str) -> str:
    """`` ErrorInvalidUser: The requested user ... is invalid.`` from Graph's error body."""
    try:
        error = json.loads(text).get("error") if text else None
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return ""
    code, message = str(error.get("code") or ""), " ".join(str(error.get("message") or "").split())
    detail = f" {code}: {message}" if message else f" {code}"
    return detail if len(detail) <= _DETAIL_LIMIT else detail[: _DETAIL_LIMIT - 1] + "…"


# ---------------------------------------------------------------- SMTP


class SmtpChannel:
    """AlertChannel on an SMTP submission server: STARTTLS, then AUTH, then the message."""

    kind = "smtp"

    def __init__(
        self,
        config: MonitorConfig,
        channel: ChannelConfig,
        secrets: SecretSource,
        *,
        sleep: Sleep = asyncio.sleep,
        attempts: int = 5,
        owners: OwnerAddresses | None = None,
    ) -> None:
        if not (channel.host and channel.sender):
            raise ValueError(f"channel {channel.name}: an smtp channel needs host and from")
        self.name = channel.name
        self.channel = channel
        self._secrets = secrets
        self._sleep = sleep
        self._policy = RetryPolicy(attempts=attempts)
        self._timeout = config.network.timeout_seconds
        self._ca_bundle = config.network.ca_bundle
        self._owners = owners  # the apps' owners' addresses (notifyOwners)

    async def send(self, notice: Notice) -> None:
        assert self.channel.sender is not None
        message, recipients = _message(self.channel, notice, self.channel.sender, await owner_addresses(self._owners, notice))
        password = await self._password()  # read for this notice only, never kept

        async def attempt() -> None:
            await asyncio.to_thread(self._submit, message, recipients, password)

        attempts = await deliver(self.name, attempt, policy=self._policy, sleep=self._sleep)
        log.info(
            "channel %s: notice %s submitted to %s:%s for %d recipient(s) (%d attempt(s))",
            self.name,
            notice.id[:12],
            self.channel.host,
            self.channel.port,
            len(recipients),
            attempts,
        )

    async def aclose(self) -> None:
        if self._owners is not None:
            await self._owners.aclose()

    async def _password(self) -> SecretValue | None:
        name = self.channel.password_secret_name
        if not name:
            return None
        try:
            return await self._secrets.secret(name)
        except (NotFound, AccessDenied) as exc:
            raise ChannelError(self.name, f"SMTP password secret {name}: {type(exc).__name__}", transient=False, status=exc.status) from exc
        except ExternalError as exc:
            raise ChannelError(self.name, f"SMTP password secret {name} could not be read ({type(exc).__name__})", status=exc.status) from exc

    # ---- blocking part, run in a worker thread

    def _submit(self, message: EmailMessage, recipients: list[str], password: SecretValue | None) -> None:
        channel, where = self.channel, f"{self.channel.host}:{self.channel.port}"
        stage = "connect"
        failure: Retryable | ChannelError | None = None
        try:
            with smtplib.SMTP(channel.host or "", channel.port, timeout=self._timeout) as smtp:  # debuglevel stays 0: AUTH lines are never printed
                stage = "STARTTLS"
                smtp.ehlo()
                smtp.starttls(context=self._tls())
                smtp.ehlo()
                if channel.username and password is not None:
                    stage = "AUTH"
                    smtp.login(channel.username, password.reveal())
                stage = "message"
                refused = smtp.send_message(message, from_addr=channel.sender, to_addrs=recipients)
            if refused:
                log.warning("channel %s: %s refused %d of %d recipient(s): %s", self.name, where, len(refused), len(recipients), ", ".join(sorted(refused)))
        except smtplib.SMTPNotSupportedError:  # no STARTTLS, or no AUTH after it
            failure = ChannelError(self.name, f"{where} does not offer {stage}: not sending", transient=False)
        except smtplib.SMTPRecipientsRefused as exc:
            failure = _smtp_reply(self.name, [code for code, _ in exc.recipients.values()], "every recipient refused")
        except smtplib.SMTPResponseException as exc:  # AUTH (535), MAIL, DATA, the greeting...
            what = "authentication failed" if isinstance(exc, smtplib.SMTPAuthenticationError) else f"{stage} refused"
            failure = _smtp_reply(self.name, [exc.smtp_code], what)
        except ssl.SSLCertVerificationError as exc:
            failure = ChannelError(self.name, f"TLS certificate of {channel.host} does not verify ({exc.verify_message})", transient=False)
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused connections, TLS errors
            failure = Retryable(f"{stage} with {where} failed ({type(exc).__name__})")
        if failure is not None:
            # Raised outside the handler: smtplib's exceptions are not carried along.
            raise failure

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self._ca_bundle) if self._ca_bundle else ssl.create_default_context()


def _smtp_reply(channel: str, codes: list[int], what: str) -> Retryable | ChannelError:
    """4xx only: the server asks to try later; any 5xx (535 login, 550 mailbox...) is a
    refusal. The server's own text is not kept: after AUTH it may echo what was sent."""
    lasting = [code for code in codes if not 400 <= code < 500]
    if lasting or not codes:
        code = lasting[0] if lasting else 554
        return ChannelError(channel, f"SMTP {code} ({what})", transient=False, status=code)
    return Retryable(f"SMTP {codes[0]} ({what})", status=codes[0])
