"""HTTP helpers shared by the monitor and its tests.

``session_with_host_map`` gives a ``requests.Session`` that connects to a
different address for some host names while everything else about the request
stays as if it went to the real name, like ``curl --resolve``:

    session = session_with_host_map({"*.smarttrace.ai": "127.0.0.1:8443"}, "ca.pem")
    session.get("https://acme.smarttrace.ai/")
    # TCP to 127.0.0.1:8443; Host header, TLS SNI and certificate check all
    # use "acme.smarttrace.ai"; response.url is still https://acme.smarttrace.ai/

Map keys are exact host names ("api.smarttrace.ai") or wildcards
("*.smarttrace.ai", which matches any name ending in ".smarttrace.ai", at any
depth, but not "smarttrace.ai" itself). An exact name wins over a wildcard,
and a longer wildcard over a shorter one. Matching ignores case and a trailing
dot. Values are "ip:port", "[ipv6]:port" or "ip" (keep the URL's port).

A mapped request never goes through a proxy (the mapping is the route); an
unmapped request behaves exactly as with a plain ``requests.Session``.
Needs requests >= 2.32.2 (``HTTPAdapter.build_connection_pool_key_attributes``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

__all__ = ["HostMap", "HostMapAdapter", "session_with_host_map"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _normalise(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _split_target(target: str) -> tuple[str, int | None]:
    """'127.0.0.1:8443' -> ('127.0.0.1', 8443); '[::1]:8443' -> ('::1', 8443); '10.0.0.1' -> ('10.0.0.1', None)."""
    text = target.strip()
    if not text:
        raise ValueError("empty host-map target")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"bad host-map target {target!r}")
        return host, int(rest[1:])
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, None  # a bare name, IPv4 or unbracketed IPv6 address


class HostMap:
    """Resolves host names to (connect_host, connect_port or None)."""

    def __init__(self, mapping: dict[str, str] | None = None) -> None:
        self.exact: dict[str, tuple[str, int | None]] = {}
        self.wildcards: list[tuple[str, tuple[str, int | None]]] = []  # (".suffix", target), longest first
        for pattern, target in (mapping or {}).items():
            resolved = _split_target(target)
            name = _normalise(pattern)
            if name.startswith("*."):
                self.wildcards.append((name[1:], resolved))
            elif "*" in name:
                raise ValueError(f"host-map pattern {pattern!r}: only a leading '*.' wildcard is supported")
            else:
                self.exact[name] = resolved
        self.wildcards.sort(key=lambda item: len(item[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcards)

    def resolve(self, host: str | None) -> tuple[str, int | None] | None:
        if not host:
            return None
        name = _normalise(host)
        if name in self.exact:
            return self.exact[name]
        for suffix, target in self.wildcards:
            if name.endswith(suffix) and len(name) > len(suffix):
                return target
        return None


class HostMapAdapter(HTTPAdapter):
    """An HTTPAdapter that connects mapped host names to another address.

    Connection pools for a mapped name are created for the mapped address with
    ``server_hostname`` (SNI) and ``assert_hostname`` set to the original name;
    urllib3 keys pools by those too, so every original name gets its own pool.
    """

    def __init__(self, host_map: dict[str, str] | HostMap | None = None, **kwargs: Any) -> None:
        if not hasattr(HTTPAdapter, "build_connection_pool_key_attributes"):
            raise RuntimeError(f"host mapping needs requests >= 2.32.2, found {requests.__version__}")
        self.host_map = host_map if isinstance(host_map, HostMap) else HostMap(host_map)
        super().__init__(**kwargs)

    def _target(self, url: str) -> tuple[str, str, int | None, str, int] | None:
        """(scheme, original host, original port, connect host, connect port) for a mapped URL."""
        parts = urlsplit(url)
        scheme = (parts.scheme or "").lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        resolved = self.host_map.resolve(parts.hostname)
        if resolved is None:
            return None
        connect_host, connect_port = resolved
        port = parts.port
        return scheme, parts.hostname or "", port, connect_host, connect_port or port or _DEFAULT_PORTS[scheme]

    def build_connection_pool_key_attributes(self, request: Any, verify: Any, cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        target = self._target(request.url)
        if target is None:
            return host_params, pool_kwargs
        scheme, original, _port, connect_host, connect_port = target
        host_params = {"scheme": scheme, "host": connect_host, "port": connect_port}
        if scheme == "https":
            pool_kwargs = dict(pool_kwargs)
            pool_kwargs["server_hostname"] = original
            if verify is not False:
                pool_kwargs["assert_hostname"] = original
        return host_params, pool_kwargs

    def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        target = self._target(request.url)
        if target is not None:
            scheme, original, port, _host, _port = target
            # A copy, so that a redirect to another host does not inherit this Host header.
            request = request.copy()
            if not any(key.lower() == "host" for key in request.headers):
                netloc = f"[{original}]" if ":" in original else original
                if port is not None and port != _DEFAULT_PORTS[scheme]:
                    netloc = f"{netloc}:{port}"
                request.headers["Host"] = netloc
            proxies = {}  # the mapping is the route: never send a mapped name to a proxy
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)


class _Session(requests.Session):
    """A Session whose own CA bundle beats REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE.

    Plain requests lets those variables override ``session.verify`` (only an
    explicit ``verify=`` per request wins); here ``ca_path`` is the session's
    trust store whatever the environment says. A per-request ``verify=`` still wins.
    """

    ca_path: str | None = None
    follow_redirects: bool = True

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.follow_redirects:
            # Whatever the caller (MSAL) asks: a 307/308 would re-send the body (a client
            # secret) to wherever the Location points.
            kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_path and (verify is None or verify is True):
            settings["verify"] = self.ca_path
        return settings


def session_with_host_map(
    host_map: dict[str, str] | None,
    ca_path: str | None = None,
    *,
    trust_env: bool = True,
    follow_redirects: bool = True,
    pool_maxsize: int | None = None,
) -> requests.Session:
    """A ``requests.Session`` that resolves the mapped names to the given addresses.

    ``ca_path`` (a PEM bundle) is the session's trust store, replacing the
    default one (and winning over REQUESTS_CA_BUNDLE); None keeps requests'
    default. An empty or missing map gives plain ``requests`` behaviour.
    ``trust_env=False`` skips the environment (proxies, netrc) on every request.
    ``follow_redirects=False`` answers every redirect as it is, whatever a request asks.
    ``pool_maxsize``: connections kept per host (requests keeps 10), for callers that
    run more requests to one host at once than that.
    """
    session = _Session()
    session.follow_redirects = follow_redirects
    session.trust_env = trust_env
    sizing = {"pool_maxsize": pool_maxsize} if pool_maxsize else {}
    if host_map or sizing:
        adapter = HostMapAdapter(host_map or {}, **sizing)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
    if ca_path:
        session.ca_path = str(ca_path)
        session.verify = str(ca_path)
    return session
