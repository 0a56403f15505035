"""`sso-monitor discover [--tenant ID] [--write apps.json]`: find a tenant's SmartTrace app
registrations, print each one's health and whether the monitor owns it (with the exact
command that makes it an owner), and write or merge their configuration.

Reads only (Application.ReadWrite.OwnedBy lists and reads every app of the tenant): the
list of applications, then the check's batched Graph reads for the SmartTrace ones. No
Key Vault read, no token request, no change in the tenant. The decisions are in
checks/discover.py; this module parses, prints and writes.

Exit codes: 0 discovery ran (and wrote when asked); 3 it could not (no configuration
to start from, the tenant could not be read, the merged configuration would not be
valid, the file could not be written). Health is printed, not turned into an exit
code: `sso-monitor check` does that once the apps are configured.

Only argparse and pathlib are imported with the module: the parser is built on every
run of the CLI, the rest loads when the command runs (as the other commands' modules).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

PLACEHOLDER_APP_ID = "00000000-0000-0000-0000-000000000000"


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="the configuration to start from, a file or the JSON itself: its identities, cloud and network reach the tenant "
        "(default: the --write file when it exists, else the SSO_MONITOR_CONFIG setting)",
    )
    parser.add_argument("--tenant", metavar="ID", help="the tenant to read (default: homeTenantId, or the one tenant of the configured apps)")
    parser.add_argument(
        "--write",
        metavar="FILE",
        type=Path,
        help="write the configuration with the SmartTrace apps found: an existing file is merged into (by appId; configured apps keep their entries), "
        "else the --config document is the start",
    )
    parser.add_argument("--include-staging", action="store_true", help="also add the apps on *.staging.smarttrace.ai (default: reported only)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, *, out: IO[str] | None = None, err: IO[str] | None = None, now: Any = None) -> int:
    import asyncio
    import sys
    from datetime import UTC, datetime

    from sso_monitor.cli.exits import EXIT_MONITOR_FAILED, EXIT_OK
    from sso_monitor.errors import ConfigError, ExternalError

    out = out or sys.stdout
    err = err or sys.stderr
    written = Path(args.write) if args.write else None
    try:
        document = _start_document(getattr(args, "config", None), written)
        tenant = _tenant(args.tenant, document)
        settings = _settings(document, tenant)
        base = _read_json(written) if written is not None and written.exists() else document
    except ConfigError as exc:
        err.write(f"sso-monitor: {exc}\n")
        return EXIT_MONITOR_FAILED
    try:
        discovery = asyncio.run(_discover(settings, tenant, base, now or datetime.now(UTC), args.include_staging))
    except ExternalError as exc:
        err.write(f"sso-monitor: cannot read the applications of tenant {tenant}: {exc}\n")
        return EXIT_MONITOR_FAILED
    code, wrote = EXIT_OK, None
    if written is not None:
        try:
            wrote = _write(written, discovery, base)
        except ConfigError as exc:
            err.write(f"sso-monitor: {written} not written: the merged configuration would not be valid: {exc}\n")
            code = EXIT_MONITOR_FAILED
        except OSError as exc:
            err.write(f"sso-monitor: {written} not written: {exc.strerror or exc}\n")
            code = EXIT_MONITOR_FAILED
    if args.json:
        _print_json(discovery, written, wrote, out)
    else:
        _print_text(discovery, written, wrote, out)
    return code


# ---------------------------------------------------------------- the configuration


def _read_json(path: Path) -> dict[str, Any]:
    import json

    from sso_monitor.errors import ConfigError

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration file ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
    if not isinstance(document, dict):
        raise ConfigError([f"{path}: must be a JSON object"])
    return document


def _start_document(source: str | None, written: Path | None) -> dict[str, Any]:
    """The document whose identities, cloud and network reach the tenant: --config (a
    file, or the JSON itself), else the --write file when it exists, else the
    SSO_MONITOR_CONFIG setting (a path or the JSON, as every other command reads it)."""
    import json
    import os

    from sso_monitor.errors import ConfigError

    if not source and (written is None or not written.exists()):
        source = os.environ.get("SSO_MONITOR_CONFIG") or None
    if source:
        if source.lstrip().startswith("{"):
            try:
                document = json.loads(source)
            except json.JSONDecodeError as exc:
                raise ConfigError([f"--config: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"]) from None
            if not isinstance(document, dict):
                raise ConfigError(["--config: must be a JSON object"])
            return document
        return _read_json(Path(source))
    if written is not None and written.exists():
        return _read_json(written)
    raise ConfigError(
        [
            "discover needs a configuration to start from (vaultUrl, homeTenantId, identities, cloud, network): "
            "--config FILE, a --write FILE that exists, or the SSO_MONITOR_CONFIG setting; its apps may be empty"
        ]
    )


def _tenant(given: str | None, document: dict[str, Any]) -> str:
    import re

    from sso_monitor.errors import ConfigError

    tenant = given or document.get("homeTenantId")
    if not tenant:
        tenants = {str(a.get("tenantId", "")).lower() for a in document.get("apps") or [] if isinstance(a, dict) and a.get("tenantId")}
        tenant = tenants.pop() if len(tenants) == 1 else None
    if not isinstance(tenant, str) or not re.match(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", tenant):
        raise ConfigError([f"--tenant: must be a tenant id (GUID){f', not {tenant!r}' if tenant else ''}; the configuration names no single tenant"])
    return tenant.lower()


def _settings(document: dict[str, Any], tenant: str) -> Any:
    """The settings that reach the tenant. A configuration with no apps yet (onboarding)
    is read with a placeholder app in the tenant, so that its other sections are checked
    as they will be; the placeholder is never written."""
    from dataclasses import replace

    from sso_monitor.config import parse_config

    probe = {"facility": "discover-placeholder", "tenantId": tenant, "appId": PLACEHOLDER_APP_ID}
    apps = document.get("apps")
    usable = dict(document, apps=apps if isinstance(apps, list) and apps else [probe])
    settings = parse_config(usable)
    return replace(settings, apps=(replace(settings.apps[0], tenant_id=tenant),))  # one Graph reader: this tenant's


def _valid(document: dict[str, Any]) -> Any:
    from sso_monitor.config import parse_config
    from sso_monitor.errors import ConfigError

    try:
        return parse_config(document)
    except ConfigError:
        return None


async def _discover(settings: Any, tenant: str, document: dict[str, Any], now: Any, include_staging: bool) -> Any:
    from typing import cast

    from sso_monitor.checks.discover import ApplicationDirectory, discover
    from sso_monitor.wiring import build_adapters

    adapters = build_adapters(settings)
    try:
        # The check's directory reader for this tenant: it also lists applications.
        directory = cast(ApplicationDirectory, adapters.directories[tenant])
        return await discover(directory, tenant, document, now, include_staging=include_staging, settings_of=_valid)
    finally:
        await adapters.aclose()


def _write(path: Path, discovery: Any, base: dict[str, Any]) -> bool:
    """Write the merged configuration (checked first; atomically). False: nothing to add
    to an existing file, which is left as it is."""
    import json
    import os
    import tempfile

    from sso_monitor.config import parse_config

    if path.exists() and not discovery.merge.added:
        return False
    parse_config(discovery.document)  # ConfigError: not written
    text = json.dumps(discovery.document, indent=2, ensure_ascii=False) + "\n"
    folder = path.resolve().parent
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        else:
            os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


# ---------------------------------------------------------------- output


def owner_command(app_id: str, monitor_object_id: str | None) -> str:
    """The command that makes the monitor an owner (az: --id takes the application id;
    --owner-object-id the monitor's service principal's object id)."""
    return f"az ad app owner add --id {app_id} --owner-object-id {monitor_object_id or '<the monitor service principal object id>'}"


def _state(found: Any, added: set[str], wrote: bool | None) -> str:
    if found.configured_as is not None:
        return f"configured ({found.configured_as})"
    if found.not_added:
        return "not added: " + found.not_added
    if found.candidate.facility in added:
        return "added" if wrote else "to add (--write)"
    return "not configured"


def _owner_commands(discovery: Any) -> list[Any]:
    """The apps the monitor would watch (a facility name) but does not own."""
    return [found for found in discovery.not_owned if found.candidate.facility is not None]


def _print_text(discovery: Any, written: Path | None, wrote: bool | None, out: IO[str]) -> None:
    added = set(discovery.merge.added)
    production, staging = discovery.production, discovery.staging
    out.write(
        f"Tenant {discovery.tenant_id}: {discovery.scanned} app registration{'s' if discovery.scanned != 1 else ''} read, "
        f"{len(production)} SmartTrace app{'s' if len(production) != 1 else ''}" + (f" and {len(staging)} on SmartTrace's staging" if staging else "") + ".\n"
    )
    sections = [("SmartTrace apps", production), ("Staging (*.staging.smarttrace.ai): reported apart, added only with --include-staging", staging)]
    for title, group in sections:
        if not group:
            continue
        out.write(f"\n{title}\n")
        width = max(len(f.candidate.facility or "?") for f in group)
        for found in group:
            owner = {True: "owner", False: "NOT OWNER", None: "owner ?"}[found.owned]
            facility = found.candidate.facility or "?"
            out.write(f"  {facility:<{width}}  {found.candidate.app.app_id}  {found.status:<8}  {owner:<9}  {_state(found, added, wrote)}\n")
            out.write(f"  {'':<{width}}  {found.candidate.app.display_name}: {found.candidate.evidence}\n")
            for finding in found.findings:
                out.write(f"  {'':<{width}}    {finding.severity.value} {finding.code}: {finding.message}\n")
    if not discovery.apps:
        out.write("No app registration has a logout URL or redirect URI on smarttrace.ai.\n")
    not_owned = _owner_commands(discovery)
    if not_owned:
        out.write(
            "\nThe monitor is not an owner of "
            + ("this app" if len(not_owned) == 1 else f"these {len(not_owned)} apps")
            + ": it can read but not renew their client secrets (Application.ReadWrite.OwnedBy). An administrator of the tenant runs:\n"
        )
        for found in not_owned:
            out.write(f"  {owner_command(found.candidate.app.app_id, discovery.monitor_object_id)}\n")
    if discovery.missing:
        out.write(f"\nConfigured for this tenant but not found in it: {', '.join(discovery.missing)}\n")
    out.write("\n")
    if written is None:
        if added:
            out.write(f"Not written: run again with --write FILE to add {len(added)} app{'s' if len(added) != 1 else ''} ({', '.join(sorted(added))}).\n")
    elif wrote:
        kept = len(discovery.merge.kept)
        out.write(
            f"Wrote {written}: {len(added)} app{'s' if len(added) != 1 else ''} added ({', '.join(sorted(added)) or 'none'}), {kept} already configured.\n"
        )
    elif wrote is False:
        out.write(f"{written} unchanged: nothing to add.\n")


def _print_json(discovery: Any, written: Path | None, wrote: bool | None, out: IO[str]) -> None:
    from sso_monitor.cli.output import write_json
    from sso_monitor.service import to_json

    added = set(discovery.merge.added)
    owners = _owner_commands(discovery)
    apps = []
    for found in discovery.apps:
        candidate = found.candidate
        apps.append(
            {
                "facility": candidate.facility,
                "appId": candidate.app.app_id,
                "displayName": candidate.app.display_name,
                "environment": candidate.environment,
                "apiBase": candidate.api_base,
                "evidence": candidate.evidence,
                "status": found.status,
                "owned": found.owned,
                "ownerCommand": owner_command(candidate.app.app_id, discovery.monitor_object_id) if found in owners else None,
                "configuredAs": found.configured_as,
                "added": bool(wrote) and found.configured_as is None and candidate.facility in added and found.not_added is None,
                "notAdded": found.not_added,
                "findings": [f.as_dict() for f in found.findings],
            }
        )
    document = {
        "tenantId": discovery.tenant_id,
        "scanned": discovery.scanned,
        "monitorObjectId": discovery.monitor_object_id,
        "apps": apps,
        "missing": discovery.missing,
        "written": str(written) if wrote else None,
    }
    write_json(to_json(document), out)  # the one JSON style (findings' details camelCase too)
