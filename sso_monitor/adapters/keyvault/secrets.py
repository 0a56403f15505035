"""SecretSource on Key Vault: the channel adapters' webhook URLs and SMTP passwords,
and the handoff tokens, from the settings vault (``settingsVaultUrl``, read only).

A thin layer over KeyVaultReader (the same SDK client, identity and bounded
retries as the checks), reading the current version only. A ReadFailure
becomes our exception, naming the secret, never its value.
"""

from __future__ import annotations

from sso_monitor.adapters.keyvault.reader import KeyVaultReader
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import AccessDenied, ExternalError, NotFound
from sso_monitor.models import Problem, ReadFailure, SecretValue

SERVICE = "keyvault"
_ERRORS: dict[Problem, type[ExternalError]] = {Problem.NOT_FOUND: NotFound, Problem.ACCESS_DENIED: AccessDenied}


class KeyVaultSecretSource:
    def __init__(self, config: MonitorConfig, *, reader: KeyVaultReader | None = None) -> None:
        self._reader = reader or KeyVaultReader(config, vault_url=config.settings_vault_url)

    async def secret(self, name: str) -> SecretValue:
        result = await self._reader.read(name)
        if isinstance(result, ReadFailure):
            raise _ERRORS.get(result.problem, ExternalError)(SERVICE, f"secret {name}: {result.detail}")
        return result.value

    async def aclose(self) -> None:
        await self._reader.aclose()
