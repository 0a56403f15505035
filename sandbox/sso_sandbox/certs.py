"""One certificate authority per sandbox run, and the server certificate it signs.

The server certificate covers the loopback addresses and the public names the
sandbox stands in for (SmartTrace's facility and API hosts), so a client that
maps those names to 127.0.0.1 still verifies TLS against the sandbox CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = (
    "127.0.0.1",
    "::1",
    "localhost",
    "smarttrace.ai",
    "*.smarttrace.ai",
    "api.smarttrace.ai",
    "*.staging.smarttrace.ai",
    "api.staging.smarttrace.ai",
)


@dataclass
class SandboxTLS:
    ca: trustme.CA
    ca_path: Path
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def make_tls(directory: Path, extra_names: tuple[str, ...] = ()) -> SandboxTLS:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="SSO Monitor sandbox")
    server_cert = ca.issue_cert(*SERVER_NAMES, *extra_names)
    ca_path = directory / "sandbox-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    server_cert.configure_cert(context)
    return SandboxTLS(ca=ca, ca_path=ca_path, server_context=context)
