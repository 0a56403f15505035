"""One tenant's msgraph request pipeline, shared by the batched reader
(graph.py) and the writer (graph_writer.py).

``GraphPipeline`` builds, on first use and inside the running event loop,
msgraph's request adapter: Azure Identity authentication restricted to the
Graph host, msgraph's default middleware on httpx (redirects, retries, TLS
with ``network.caBundle``), a timeout of ``network.timeoutSeconds`` per phase.
``send`` answers the raw status and JSON body, whatever the status: callers
read Graph's error bodies themselves.

Retries: the RetryHandler re-sends 429, 503 and 504 for every method,
POST included. ``send(..., retry=False)`` turns that off for one request,
for the writes that must reach Graph at most once (addPassword).

Nothing is imported from msgraph, kiota or azure-identity until the first
request: building a pipeline costs no import and no network.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sso_monitor.adapters.entra.identity import credential_for
from sso_monitor.config import MonitorConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphAnswer:
    """One Graph response: status, parsed JSON body (None if empty or not JSON), Retry-After.
    The body stays out of the repr: addPassword's holds the new secret."""

    status: int
    body: Any = field(repr=False)
    retry_after: float | None = None


class GraphPipeline:
    """The msgraph request adapter for one tenant, with the identity configured for it."""

    def __init__(self, config: MonitorConfig, tenant_id: str) -> None:
        self.config = config
        self.tenant_id = tenant_id.lower()
        self._adapter: Any = None
        self._http: Any = None
        self._credential: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def adapter(self) -> Any:
        """The request adapter, built on first use inside the running loop (httpx's and
        aiohttp's sessions belong to the loop that made them). Raises ConfigError when
        the tenant has no usable identity."""
        loop = asyncio.get_running_loop()
        if self._adapter is not None and self._loop is loop:
            return self._adapter
        if self._adapter is not None:
            log.debug("graph client for tenant %s: new event loop, building a new client", self.tenant_id)
        # The Graph SDK loads with the first request, not with the module (cold start:
        # building a reader loads no SDK; tests/adapters/test_graph_directory.py).
        import httpx
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from msgraph_core import BaseGraphRequestAdapter

        network, cloud = self.config.network, self.config.cloud
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=network.ca_bundle) if network.ca_bundle else True
        self._credential = credential_for(self.config, self.tenant_id, aio=True)
        host = urlsplit(cloud.graph_endpoint).hostname or "graph.microsoft.com"
        auth = AzureIdentityAuthenticationProvider(self._credential, scopes=[cloud.graph_scope], allowed_hosts=[host])
        http = with_graph_middleware(httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(network.timeout_seconds, connect=network.connect_timeout)))
        adapter = BaseGraphRequestAdapter(auth, http_client=http)
        adapter.base_url = cloud.graph_endpoint.rstrip("/")
        self._adapter, self._http, self._loop = adapter, http, loop
        return adapter

    async def send(self, method: str, path: str, *, body: Any = None, retry: bool = True) -> GraphAnswer:
        """``method`` on ``{graphEndpoint}{path}`` (path with its query string), with ``body``
        as JSON. Any HTTP answer is returned; transport and token failures raise (httpx,
        azure-identity and kiota exceptions, untranslated: the caller knows what they mean
        for its request). ``retry=False``: the request is sent exactly once."""
        from kiota_abstractions.method import Method
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_abstractions.request_information import RequestInformation
        from kiota_http.middleware.options import (
            ResponseHandlerOption,
            RetryHandlerOption,
        )

        adapter = self.adapter()
        info = RequestInformation(Method[method.upper()])
        info.url = adapter.base_url + path
        info.headers.try_add("Accept", "application/json")
        if body is not None:
            info.set_stream_content(json.dumps(body).encode("utf-8"), "application/json")
        # The native handler hands back the httpx response after the middleware
        # (retries included), whatever its status: Graph's error body is ours to read.
        options: list[Any] = [ResponseHandlerOption(NativeResponseHandler())]
        if not retry:
            options.append(RetryHandlerOption(max_retries=0, should_retry=False))
        info.add_request_options(options)
        response = await adapter.send_primitive_async(info, "bytes", None)
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        return GraphAnswer(response.status_code, parsed, parse_seconds(response.headers.get("retry-after")))

    async def caller_object_id(self) -> str | None:
        """The object id of the monitor's own service principal in this tenant: the
        ``oid`` claim of its Graph token (the token the requests carry, from the same
        credential and its cache). None when the token is not a JWT or lacks it."""
        self.adapter()
        token = await self._credential.get_token(self.config.cloud.graph_scope)
        oid = token_claims(token.token).get("oid")
        return str(oid).lower() if isinstance(oid, str) and oid else None

    async def aclose(self) -> None:
        http, credential = self._http, self._credential
        self._adapter = self._http = self._credential = self._loop = None
        try:
            if http is not None:
                await http.aclose()
        finally:
            if credential is not None:
                await credential.close()


def with_graph_middleware(client: Any) -> Any:
    """msgraph's default middleware (GraphClientFactory.create_with_default_middleware),
    except that the RetryHandler also honours a fractional Retry-After.

    Graph sends one ("Retry-After: 2.128" in its own 429 sample); kiota's
    RetryHandler reads only whole seconds or a date and otherwise waits its
    backoff of 3.5 s or more. Requests that must not be repeated opt out per
    request (``GraphPipeline.send(retry=False)``).
    """
    from kiota_http.kiota_client_factory import KiotaClientFactory
    from kiota_http.middleware import RetryHandler
    from msgraph_core import GraphClientFactory
    from msgraph_core.middleware import GraphTelemetryHandler

    class FractionalRetryAfter(RetryHandler):
        def get_delay_time(self, retry_count: int, response: Any = None, delay: float = 3.0) -> float:
            seconds = parse_seconds(response.headers.get("retry-after")) if response is not None else None
            if seconds:  # above zero, as the SDK's own rule
                return seconds
            return super().get_delay_time(retry_count, response, delay)

    middleware = [FractionalRetryAfter() if type(m) is RetryHandler else m for m in KiotaClientFactory.get_default_middleware(None)]
    middleware.append(GraphTelemetryHandler())
    return GraphClientFactory.create_with_custom_middleware(middleware, client=client)


def token_claims(token: str) -> dict[str, Any]:
    """The payload of our own access token, unverified: it is read only to learn who
    we are (Entra issued it to us over TLS), never to decide whom to trust."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return payload if isinstance(payload, dict) else {}


def parse_seconds(value: Any) -> float | None:
    """A Retry-After in seconds (fractions allowed); None when absent or not a number."""
    if value is None:
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
