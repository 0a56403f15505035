"""An SMTP submission server that captures mail into the world.

aiosmtpd on 127.0.0.1 with an ephemeral port, like a submission service on
port 587: STARTTLS (with the sandbox certificate) is required before any
mail transaction or AUTH; AUTH PLAIN and LOGIN check ``world.smtp_users``
(login -> password). AUTH is required when ``world.smtp_users`` has entries,
decided per connection, so a test may add users while the server runs; with no
users, mail is accepted without AUTH and any AUTH succeeds.

Each accepted message becomes ``SentMail(via="smtp", sender, recipients,
subject, body=<raw RFC 5322 text>, at=world.now())`` in ``world.mail``.
"""

from __future__ import annotations

import logging
import secrets
from email import policy
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from sso_sandbox.world import SentMail, World

log = logging.getLogger("sso_sandbox.smtp")

SERVER_NAME = "smtp.sandbox.invalid"
MAX_MESSAGE_BYTES = 35 * 1024 * 1024  # Exchange Online's default send limit (35 MB after encoding)


class _DropLoginDataWarning(logging.Filter):
    """aiosmtpd 1.4 warns "Session.login_data is deprecated" on every successful AUTH, from its own code."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_LOGIN_DATA_FILTER = _DropLoginDataWarning()


class _CaptureHandler:
    def __init__(self, world: World) -> None:
        self.world = world

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
            subject = str(message.get("subject", "") or "").strip()  # unfolded and decoded, as a mailbox shows it
        except Exception:
            subject = ""
        text = raw.decode("utf-8", "replace")
        with self.world.lock:
            self.world.mail.append(
                SentMail(
                    via="smtp",
                    sender=envelope.mail_from or "",
                    recipients=list(envelope.rcpt_tos),
                    subject=subject,
                    body=text,
                    at=self.world.now(),
                )
            )
        return f"250 2.0.0 OK queued as {secrets.token_hex(6).upper()}"


class _Authenticator:
    def __init__(self, world: World) -> None:
        self.world = world

    def __call__(self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if mechanism not in ("LOGIN", "PLAIN") or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        with self.world.lock:
            users = dict(self.world.smtp_users)
        if not users:
            return AuthResult(success=True, auth_data=login)
        expected = users.get(login)
        if expected is not None and secrets.compare_digest(expected.encode(), password.encode()):
            return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)


class _Controller(Controller):
    """A Controller that binds port 0 and then learns its real port."""

    def __init__(self, world: World, **kwargs: Any) -> None:
        self.world = world
        super().__init__(**kwargs)

    def factory(self) -> SMTP:
        with self.world.lock:
            auth_required = bool(self.world.smtp_users)
        kwargs = dict(self.SMTP_kwargs)
        kwargs["auth_required"] = auth_required
        return SMTP(self.handler, **kwargs)

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    """The sandbox's SMTP submission endpoint: ``start()``, then ``host``/``port``."""

    def __init__(self, world: World, tls: Any) -> None:
        self.world = world
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = 0
        self._controller: _Controller | None = None

    def start(self) -> SmtpServer:
        if self._controller is not None:
            return self
        aiosmtpd_log = logging.getLogger("mail.log")
        if _LOGIN_DATA_FILTER not in aiosmtpd_log.filters:
            aiosmtpd_log.addFilter(_LOGIN_DATA_FILTER)
        controller = _Controller(
            self.world,
            handler=_CaptureHandler(self.world),
            hostname=self.host,
            port=0,
            server_hostname=SERVER_NAME,
            tls_context=self.tls.server_context,
            require_starttls=True,
            auth_require_tls=True,
            authenticator=_Authenticator(self.world),
            data_size_limit=MAX_MESSAGE_BYTES,
            decode_data=False,
        )
        controller.start()
        self._controller = controller
        self.port = controller.port
        log.debug("sandbox smtp listening on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
