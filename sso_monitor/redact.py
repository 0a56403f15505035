"""No fragment of a secret in anything the monitor says.

Every secret value the process holds (a new client secret, a Key Vault value, a
handoff token, a webhook URL's signature, an SMTP password) is wrapped in
``models.SecretValue``, which registers it here. ``scrub(text)`` masks every
run of ``MIN_RUN`` (8) or more characters of any registered secret, not only
whole copies: an upstream error that echoes 39 of 40 characters is masked too.
A secret shorter than ``MIN_RUN`` is not registered: masking it wherever its few
characters appear would garble ordinary words (an SMTP password "relay1"); the
monitor never puts a value into a text in the first place.

Where it is applied: every log record of the process (a record factory,
installed once by ``install_log_redaction``), and the outputs that leave the
process: the admin API's answers, alert cards and emails, the alert state and
the CLI's output. Adapters still build their messages from ids, never values;
this is the net under them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

MIN_RUN = 8
MASK = "***"


class Redactor:
    """The secrets of this process, as their runs of MIN_RUN characters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grams: set[str] = set()

    def register(self, value: str) -> None:
        if not value:
            return
        for part in secret_parts(value):
            self._register(part)

    def _register(self, value: str) -> None:
        if len(value) < MIN_RUN:
            return
        with self._lock:
            self._grams.update(value[i : i + MIN_RUN] for i in range(len(value) - MIN_RUN + 1))

    def __bool__(self) -> bool:
        return bool(self._grams)

    def snapshot(self) -> frozenset[str]:
        """What is registered now, for ``restore`` (tests: one test's secrets are not the next's)."""
        with self._lock:
            return frozenset(self._grams)

    def restore(self, snapshot: frozenset[str]) -> None:
        with self._lock:
            self._grams = set(snapshot)

    def scrub(self, text: str) -> str:
        """``text`` with every run of MIN_RUN+ characters of a registered secret masked."""
        if not text or not self:
            return text
        grams = self._grams
        hidden = bytearray(len(text))
        found = False
        for start in range(len(text) - MIN_RUN + 1):
            if text[start : start + MIN_RUN] in grams:
                hidden[start : start + MIN_RUN] = b"\x01" * MIN_RUN
                found = True
        if not found:
            return text
        out: list[str] = []
        index = 0
        while index < len(text):
            if hidden[index]:
                while index < len(text) and hidden[index]:
                    index += 1
                out.append(MASK)
            else:
                out.append(text[index])
                index += 1
        return "".join(out)

    def scrub_data(self, value: Any) -> Any:
        """The same over a JSON-like structure (dict keys and values, lists, strings)."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub_data(k): self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub_data(v) for v in value)
        return value


# In a URL that is a secret (a Teams webhook), the secret is its signature: the scheme,
# host and path are everywhere else too and must not be masked wherever they appear.
_SECRET_PARAMS = {"sig", "signature", "code", "key", "token", "secret", "password", "client_secret", "sv"}


_CONNECTION_SECRETS = {"accountkey", "sharedaccesssignature"}


def _is_connection_string(value: str) -> bool:
    return ";" in value and any(f"{name}=" in value.lower() for name in _CONNECTION_SECRETS)


def secret_parts(value: str) -> list[str]:
    """What of a value to mask in fragments: the whole value, except for a URL, whose
    credential-bearing parts (query signatures, userinfo) stand for it."""
    if _is_connection_string(value):
        # a storage connection string: its AccountKey or SharedAccessSignature is the
        # secret; its endpoints and account name are in every storage log line
        keys = [part.split("=", 1)[1] for part in value.split(";") if part.split("=", 1)[0].strip().lower() in _CONNECTION_SECRETS]
        return [key for key in keys if key] or [value]
    if not value.lower().startswith(("https://", "http://")):
        return [value]
    try:
        parts = urlsplit(value)
        params = parse_qsl(parts.query, keep_blank_values=False)
    except ValueError:
        return [value]
    secrets = [v for k, v in params if k.lower() in _SECRET_PARAMS - {"sv"} and v]
    if parts.password:
        secrets.append(parts.password)
    return secrets or [value]


SECRETS = Redactor()


def register(value: str) -> None:
    SECRETS.register(value)


def scrub(text: str) -> str:
    return SECRETS.scrub(text)


def scrub_data(value: Any) -> Any:
    return SECRETS.scrub_data(value)


_installed = False
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Scrub every log record of the process as it is made, whoever logs it (our
    modules and the SDKs alike), before any handler sees it. Idempotent."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if SECRETS:
                try:
                    message = record.getMessage()
                except Exception:
                    return record
                cleaned = SECRETS.scrub(message)
                if cleaned != message:
                    record.msg, record.args = cleaned, None
                if record.exc_info and record.exc_info[0] is not None:
                    # Formatted now, scrubbed, and kept: handlers use exc_text when set.
                    record.exc_text = SECRETS.scrub(logging.Formatter().formatException(record.exc_info))
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


install_log_redaction()  # on import: any process that can hold a SecretValue scrubs its logs
