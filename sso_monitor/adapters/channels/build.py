"""One alert channel adapter per configured channel (``channels`` in the settings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sso_monitor.adapters.channels.delivery import Sleep
from sso_monitor.adapters.channels.mail import GraphMailChannel, SmtpChannel
from sso_monitor.adapters.channels.teams import TeamsChannel
from sso_monitor.adapters.graph.owners import GraphOwnerAddresses
from sso_monitor.alerts.ports import AlertChannel, OwnerAddresses, SecretSource
from sso_monitor.config import MonitorConfig


def build_channels(
    config: MonitorConfig, secrets: SecretSource, *, sleep: Sleep = asyncio.sleep, monotonic: Callable[[], float] = time.monotonic
) -> dict[str, AlertChannel]:
    """The adapters by channel name. Building one does no I/O: secrets and tokens are
    fetched on the first send. When an app has ``notifyOwners``, the email channels share
    one reader of the apps' owners' addresses (Graph, read as a notice is sent)."""
    owners: OwnerAddresses | None = GraphOwnerAddresses(config) if any(app.notify_owners for app in config.apps) else None
    channels: dict[str, AlertChannel] = {}
    for name, channel in config.channels.items():
        if channel.type == "teams":
            channels[name] = TeamsChannel(config, channel, secrets, sleep=sleep, monotonic=monotonic)
        elif channel.type == "graph-mail":
            channels[name] = GraphMailChannel(config, channel, sleep=sleep, owners=owners)
        elif channel.type == "smtp":
            channels[name] = SmtpChannel(config, channel, secrets, sleep=sleep, owners=owners)
        else:  # config.py admits only the three types
            raise ValueError(f"channel {name}: unknown type {channel.type!r}")
    return channels
