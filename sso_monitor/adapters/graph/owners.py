"""The mail addresses of an app registration's owners, for ``notifyOwners`` (the alerts
of a facility also go to the people who own its app registration, as
entra-expiry-checker notifies app owners).

``GET /applications(appId='{id}')/owners?$select=id,mail,userPrincipalName&$top=999``
(application-list-owners; Application.ReadWrite.OwnedBy may read it), in the app's own
tenant with the identity configured for it. Owners are a directoryObject collection: a
caller that may not read users gets each user with only ``@odata.type`` and ``id``,
every other property null ("Limited information returned for inaccessible member
objects", Graph's permissions overview). So the addresses need a user permission
besides OwnedBy: User.Read.All (or User.ReadBasic.All: mail is in the basic profile).
Without one, or when an owner has no mailbox (``mail`` null), that owner is not
reachable: it is logged (once per app, without addresses), and the alert still goes to
the channel's and the facility's own recipients. The ``userPrincipalName`` is never
used as an address: it need not be one.

One read per app per run (cached for the instance), paced under the tenant's identity
budget (1 resource unit: owners with ``$select``). Never raises.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from sso_monitor.adapters.graph.budget import ResourceBudget, request_cost
from sso_monitor.adapters.graph.client import GraphPipeline
from sso_monitor.config import MonitorConfig

log = logging.getLogger(__name__)

USER = "#microsoft.graph.user"
MAX_PAGES = 10  # 9,990 owners: far more than an app registration has


class GraphOwnerAddresses:
    """OwnerAddresses on Graph: the owners of an app that are users with a mail address."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self._pipelines: dict[str, GraphPipeline] = {}
        self._budgets: dict[str, ResourceBudget] = {}
        self._known: dict[tuple[str, str], tuple[str, ...]] = {}

    async def addresses(self, tenant_id: str, app_id: str) -> tuple[str, ...]:
        key = (tenant_id.lower(), app_id.lower())
        if key not in self._known:
            self._known[key] = await self._read(*key)
        return self._known[key]

    async def aclose(self) -> None:
        pipelines, self._pipelines = self._pipelines, {}
        for pipeline in pipelines.values():
            await pipeline.aclose()

    async def _read(self, tenant_id: str, app_id: str) -> tuple[str, ...]:
        pipeline = self._pipelines.get(tenant_id)
        if pipeline is None:
            pipeline = self._pipelines[tenant_id] = GraphPipeline(self.config, tenant_id)
            self._budgets[tenant_id] = ResourceBudget.for_tenant_size(self.config.network.size_of(tenant_id))
        key = quote("'" + app_id.replace("'", "''") + "'", safe="'")
        path: str | None = f"/applications(appId={key})/owners?$select=id,mail,userPrincipalName&$top=999"
        found: list[str] = []
        users = limited = without_mail = pages = 0
        while path is not None and pages < MAX_PAGES:
            await self._budgets[tenant_id].spend(request_cost("GET", path))
            try:
                answer = await pipeline.send("GET", path)
            # Broad on purpose: any failure (network, token, SDK) leaves the owners out, never the alert.
            except Exception as exc:
                log.warning("owners of app %s (tenant %s) not read (%s): the alert goes to its other recipients", app_id, tenant_id, type(exc).__name__)
                return tuple(found)
            pages += 1
            body = answer.body if isinstance(answer.body, dict) else {}
            if answer.status != 200:
                error = body.get("error")
                error = error if isinstance(error, dict) else {}
                log.warning(
                    "owners of app %s (tenant %s) not read: Graph answered HTTP %s %s; the alert goes to its other recipients",
                    app_id,
                    tenant_id,
                    answer.status,
                    error.get("code") or "",
                )
                return tuple(found)
            for owner in body.get("value") or []:
                if not isinstance(owner, dict) or owner.get("@odata.type") != USER:
                    continue  # a service principal (the monitor itself, often) has no mailbox
                users += 1
                mail = owner.get("mail")
                if isinstance(mail, str) and "@" in mail:
                    found.append(mail.strip())
                elif owner.get("userPrincipalName") is None:
                    limited += 1  # only @odata.type and id: the monitor may not read users
                else:
                    without_mail += 1
            path = self._next(body.get("@odata.nextLink"))
        if limited:
            log.warning(
                "owners of app %s (tenant %s): %d user(s) came back without their properties; reading owners' addresses needs "
                "User.Read.All (or User.ReadBasic.All) for the monitor in that tenant",
                app_id,
                tenant_id,
                limited,
            )
        if without_mail:
            log.info("owners of app %s (tenant %s): %d user(s) without a mail address are not notified", app_id, tenant_id, without_mail)
        log.debug("owners of app %s (tenant %s): %d user(s), %d address(es)", app_id, tenant_id, users, len(found))
        return tuple(found)

    def _next(self, link: object) -> str | None:
        """The next page's path, only on the Graph endpoint (the token goes with it)."""
        if not link:
            return None
        there, here = urlsplit(str(link)), urlsplit(self.config.cloud.graph_endpoint.rstrip("/"))
        prefix = here.path.rstrip("/") + "/"
        if (there.scheme, there.hostname, there.port) != (here.scheme, here.hostname, here.port) or not there.path.startswith(prefix):
            return None
        return there.path[len(prefix) - 1 :] + (f"?{there.query}" if there.query else "")
