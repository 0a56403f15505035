"""The Function App's storage account (AzureWebJobsStorage): its endpoints."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def service_endpoint(blob_url: str, service: str) -> str:
    """https://<account>.blob.<suffix> -> https://<account>.<service>.<suffix>: the
    identity-based AzureWebJobsStorage settings name the blob endpoint; the queue and
    table endpoints of the same account follow from it."""
    parts = urlsplit(blob_url)
    account, dot, rest = (parts.hostname or "").partition(".")
    if parts.scheme != "https" or not account or not rest.startswith("blob."):
        raise ValueError(f"cannot tell the {service} endpoint from the blob endpoint {blob_url}")
    host = f"{account}{dot}{service}.{rest[len('blob.') :]}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, "", "", ""))
