"""The rotation protocol for one app: named steps that check before they act.

    sweep -> retire -> create -> store -> verify -> hand off -> finish

State is the Key Vault version tags (rotation_state.py); a run reads it and
resumes wherever the last run stopped, so a crash at any point converges on
the next run. Invariants (tests/rotation/): SmartTrace's credential stays
valid until the new one is confirmed there plus the grace period; every
credential created ends in Key Vault or is removed; a credential the monitor
did not create or adopt is never removed; one rotation per app at a time (the
lease); no secret value outside Key Vault, Entra and SmartTrace's endpoint.
Dry run is honoured at every side effect ("would ...").
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sso_monitor.checks.decisions import owner_add_fix
from sso_monitor.checks.findings import Finding, Severity, finding
from sso_monitor.checks.ports import CredentialActivity, SignInLog, SignInReader, TokenProbe
from sso_monitor.checks.signins import ACTIVITY_MARGIN, activity_confirms, report_unusable, still_used_after
from sso_monitor.config import AppConfig, MonitorConfig
from sso_monitor.errors import AnswerLost, ExternalError, LeaseUnavailable, LifetimeExceedsPolicy, MonitorError, NotFound
from sso_monitor.models import (
    UNSEEN_WINDOW,
    AppRegistration,
    PasswordCredentialInfo,
    ProbeOutcome,
    Problem,
    ReadFailure,
    SecretValue,
    days_until,
    marker_name,
    unstamp,
)
from sso_monitor.rotation.ports import AppWriter, HeldLease, Lease, LifetimePolicy, NewCredential, SecretPusher, VaultVersion, VaultWriter
from sso_monitor.rotation.state import (
    ABANDONED,
    AWAITING,
    CURRENT,
    HANDED_OFF,
    PENDING,
    PREVIOUS,
    RETIRED,
    STORED_AT,
    SUPERSEDED,
    VERIFIED,
    capped_end,
    current_version,
    escalation_threshold,
    fallback_end,
    in_flight,
    is_managed,
    lifetime_refusal,
    may_abandon,
    missing_too_long,
    new_end,
    ordered,
    orphans,
    refusing_policy,
    retirable,
    rotation_due,
    stale_copies,
    stamp,
    stored_stamp,
    untagged_versions,
    version_of,
)

log = logging.getLogger(__name__)

ACTIVITY_TAG = "activity"  # one tag (Key Vault allows 15 a version): what Entra's records last said of this version
UNAVAILABLE = "unavailable"


class RotationFailed(MonitorError):
    """A step could not complete; the message says which and why (never a value)."""


class ConfirmationRefused(RotationFailed):
    """A confirmation without evidence: SmartTrace (http handoff) does not report the keyId."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class HandoffFacts:
    """What a person needs to hand a new secret to SmartTrace by hand: where it is and
    what follows. The words are the alerts' (alerts.render.handoff_steps)."""

    facility: str
    facility_url: str
    vault_url: str
    secret_name: str
    version: str
    key_id: str
    old_key_id: str | None = None
    old_end: datetime | None = None
    old_managed: bool = False  # the old secret was created or adopted by the monitor: it removes it
    grace_days: int = 0
    confirmation: str = "manual"  # handoff.confirmation: manual | activity | activity-or-manual


@dataclass
class RotationEvent:
    kind: str  # due | started | awaiting-confirmation | reminder | still-in-use | completed | failed | retired | orphan-removed
    facility: str
    tenant_id: str
    app_id: str
    message: str
    key_id: str | None = None
    handoff: HandoffFacts | None = None  # manual handoff: the facts its steps are written from
    # The event's own severity, when a finding decides it (still-in-use: OLD_SECRET_STILL_IN_USE's,
    # rising with the old secret's expiry); None: the kind's (alerts.decisions.ROTATION_SEVERITY).
    severity: str | None = None
    code: str | None = None  # the finding code the event carries, when it carries one


class Notifier(Protocol):
    async def notify(self, event: RotationEvent) -> None: ...


class MemoryNotifier:
    """Keeps events (the CLI prints them; tests assert on them)."""

    def __init__(self) -> None:
        self.events: list[RotationEvent] = []

    async def notify(self, event: RotationEvent) -> None:
        log.info("notify %s %s: %s", event.kind, event.facility, event.message)
        self.events.append(event)


@dataclass(frozen=True)
class RotationSettings:
    # The verify step (docs/rotation.md, "Why this verify rule"; verify_wait below).
    verify_successes: int = 3  # token requests in a row that must work
    verify_interval: float = 2.0  # the longest wait between two token requests
    verify_deadline: float = 300.0  # give up this run after (the next run resumes)
    verify_retry: float = 0.5  # the wait after a first failure; it doubles with each failure in a row, up to verify_interval
    verify_confirm: float = 1.0  # the wait between the successes that confirm it (at most verify_interval)
    sweep_window: timedelta = timedelta(minutes=10)  # an orphan younger than this is left alone
    lease_ttl: timedelta = timedelta(seconds=60)

    @classmethod
    def from_config(cls, config: MonitorConfig) -> RotationSettings:
        verify = config.verify
        return cls(
            verify_successes=verify.successes,
            verify_interval=verify.interval_seconds,
            verify_deadline=verify.deadline_seconds,
            verify_retry=verify.retry_seconds,
            verify_confirm=verify.confirm_seconds,
        )


def verify_wait(settings: RotationSettings, streak: int, misses: int) -> float:
    """Seconds before the verify step's next token request, after ``streak`` successes or
    ``misses`` failures in a row (one of the two is 0). While the secret does not work
    yet, soon: from ``verify_retry``, doubling up to ``verify_interval`` (propagation is
    noticed within that); once it has worked, the confirming requests ``verify_confirm``
    apart. Never longer than ``verify_interval``."""
    if streak:
        return min(settings.verify_confirm, settings.verify_interval)
    return min(settings.verify_retry * 2.0 ** min(max(misses - 1, 0), 32), settings.verify_interval)


@dataclass
class RotationDeps:
    writer: AppWriter
    vault: VaultWriter
    probe: TokenProbe
    pusher: SecretPusher
    notifier: Notifier
    lease: Lease
    clock: Clock = field(default_factory=SystemClock)
    vault_url: str = ""
    # Entra's records (issue 15: docs/evidence.md): the per-credential activity report and the
    # app's sign-ins. None: not read (behaviour as without them: a person confirms, the grace
    # period retires).
    signins: SignInReader | None = None

    async def aclose(self) -> None:
        for part in (self.writer, self.vault, self.probe, self.pusher):
            await part.aclose()
        if self.signins is not None:
            await self.signins.aclose()


@dataclass
class RotationResult:
    facility: str
    stage: str  # where the app's rotation stands after this run
    actions: list[str] = field(default_factory=list)  # "step: what was done (or would be done)"
    key_id: str | None = None  # the rotation's new credential, when there is one
    # What stopped the run, typed: LeaseUnavailable (another run has the app), ExternalError
    # (a call failed: a later try may succeed), RotationFailed (a refusal: it would fail again).
    failure: MonitorError | None = None
    message: str | None = None  # the failure as said to a person, when it says more than str(failure)
    findings: list[Finding] = field(default_factory=list)  # from Entra's records: OLD_SECRET_STILL_IN_USE, ACTIVITY_REPORT_UNAVAILABLE

    @property
    def error(self) -> str | None:
        if self.failure is None:
            return None
        return self.message or str(self.failure)

    def as_dict(self) -> dict[str, Any]:
        return {
            "facility": self.facility,
            "stage": self.stage,
            "actions": list(self.actions),
            "key_id": self.key_id,
            "error": self.error,
            "findings": [f.as_dict() for f in self.findings],
        }


def lease_key(app: AppConfig) -> str:
    return f"{app.tenant_id}-{app.app_id}"


class Rotator:
    """One run of the protocol for one app."""

    def __init__(self, app: AppConfig, deps: RotationDeps, settings: RotationSettings | None = None, *, dry_run: bool = False, force: bool = False) -> None:
        self.app = app
        self.deps = deps
        self.settings = settings or RotationSettings()
        self.dry_run = dry_run
        self.force = force
        self.result = RotationResult(app.facility, stage="idle")
        self.versions: list[VaultVersion] = []
        self.held: HeldLease | None = None
        self.secret: SecretValue | None = None  # the flight's value, once read (never logged)
        self.registration: AppRegistration | None = None  # the app as this run read it

    # ---- entry points

    async def run(self) -> RotationResult:
        try:
            if self.dry_run:  # a dry run changes nothing anywhere, not even a lease blob
                await self._run()
            else:
                async with self.deps.lease.hold(lease_key(self.app), ttl=self.settings.lease_ttl) as self.held:
                    await self._run()
        except LeaseUnavailable as exc:
            self.result.failure = exc
            if self.held is None:
                self.result.message = f"another rotation of {self.app.facility} is running (its lease is held); nothing was done"
                log.info("rotate %s: lease held elsewhere", self.app.facility)
                return self.result
            # Lost mid-run: nothing more was written; what was done is in the actions.
            done = len([a for a in self.result.actions if not a.startswith(("plan:", "resume:"))])
            self.result.message = (
                f"the lease on {self.app.facility} was lost during the run ({exc}); stopped before the next write "
                f"after {done} step(s) listed above; the next run resumes from Key Vault's state"
            )
            self.result.stage = self._stage_now()
            log.warning("rotate %s: %s", self.app.facility, self.result.error)
            return self.result
        except (ExternalError, RotationFailed) as exc:
            self.result.failure = exc
            self.result.stage = self._stage_now()
            log.warning("rotate %s: failed: %s", self.app.facility, exc)
            if not self.dry_run:
                await self._notify("failed", f"Rotation of {self.app.facility} stopped: {exc}")
        return self.result

    def _stage_now(self) -> str:
        """Where Key Vault says the rotation stands (after a failure mid-flight too)."""
        flight = in_flight(self.versions)
        if flight is not None and flight.stage:
            return flight.stage
        return CURRENT if current_version(self.versions) is not None else "idle"

    async def confirm(self, key_id: str, who: str) -> RotationResult:
        """The administrator says SmartTrace holds the new secret: hand-off done, then finish."""
        async with self.deps.lease.hold(lease_key(self.app), ttl=self.settings.lease_ttl) as self.held:
            self.versions = await self.deps.vault.versions(self.app.vault_secret_name)
            wanted = key_id.lower()
            target = version_of(self.versions, wanted)
            if target is None or target.stage in (ABANDONED, RETIRED, SUPERSEDED, PREVIOUS):
                raise RotationFailed(f"no rotation of {self.app.facility} waits for keyId {key_id}")
            if target.stage == CURRENT:
                self.say("confirm", f"keyId {key_id} is already current; nothing to do")
                self.result.stage, self.result.key_id = CURRENT, wanted
                return self.result
            if target.stage == PENDING:
                raise RotationFailed(f"keyId {key_id} is not verified yet; an unverified secret is never handed on (run rotate again)")
            if target.stage != HANDED_OFF and self.app.handoff.mode == "http":
                await self._require_smarttrace_holds(wanted)
            if target.stage == AWAITING and self.app.handoff.confirmation == "activity" and self._reads_activity():
                # Entra's records decide while they can: a person's word only when they cannot.
                self.registration = await self.deps.writer.read_app(self.app.tenant_id, self.app.app_id)
                confirmed, target, usable = await self._activity_confirmation(target)
                if confirmed is not None:
                    return self.result
                if usable:
                    raise ConfirmationRefused(
                        f"{self.app.facility} is confirmed by Entra's records (handoff.confirmation: activity), and they do not show SmartTrace "
                        f"using keyId {key_id} yet: sign in once through SmartTrace with the new secret and run rotate again; "
                        "the old secret stays until then"
                    )
            await self._confirmed(target, who, f"{who} confirmed SmartTrace holds keyId {key_id}")
        return self.result

    async def _confirmed(self, target: VaultVersion, who: str, line: str, evidence: str | None = None) -> VaultVersion:
        """The handoff is done (a person said so, or Entra's records showed it): hand-off, then
        finish. The one path for both."""
        target = await self._retag(target, stage=HANDED_OFF, confirmedAt=stamp(self.now()), confirmedBy=who[:200])
        self.say("confirm", line)
        return await self._finish(target, evidence=evidence)

    async def _require_smarttrace_holds(self, key_id: str) -> None:
        """http handoff: a person's word is not evidence that SmartTrace holds the secret
        (the push may have failed); SmartTrace's own answer is."""
        handoff = self.app.handoff
        assert handoff.url and handoff.token_secret_name
        token = await self.deps.vault.read_secret(handoff.token_secret_name)
        held = await self.deps.pusher.held_key_id(url=handoff.url, token=token, facility=self.app.facility)
        if held != key_id:
            raise ConfirmationRefused(
                f"{self.app.facility} hands secrets off over http, and SmartTrace reports keyId {held or 'none'}, not {key_id}: "
                f"push it first (sso-monitor push {self.app.facility}, or POST /api/apps/{self.app.facility}/push); "
                "the old secret stays until SmartTrace holds the new one"
            )
        self.say("confirm", f"SmartTrace reports it holds keyId {key_id}")

    async def repush(self, who: str) -> RotationResult:
        """Push the secret SmartTrace should hold again (http handoff mode): the handed-off
        one of an unfinished rotation, else the current one. For a SmartTrace that lost it,
        or a push whose answer was lost."""
        handoff = self.app.handoff
        if handoff.mode != "http" or not handoff.url or not handoff.token_secret_name:
            raise RotationFailed(f"{self.app.facility} hands secrets off manually; there is nothing to push (handoff.mode is {handoff.mode})")
        async with self.deps.lease.hold(lease_key(self.app), ttl=self.settings.lease_ttl) as self.held:
            self.versions = await self.deps.vault.versions(self.app.vault_secret_name)
            flight = in_flight(self.versions)
            target = flight if flight is not None and flight.stage == HANDED_OFF else current_version(self.versions)
            if target is None or not target.key_id:
                raise RotationFailed(f"Key Vault holds no current secret with a keyId for {self.app.facility}; adopt or rotate first")
            self.say("push", f"{who} asked to push keyId {target.key_id} (version {target.version}) to SmartTrace at {handoff.url} again")
            if self.dry_run:
                return self.result
            secret = await self.deps.vault.value(self.app.vault_secret_name, target.version)
            await self._push(target, secret, target.expires or self.now())
            self.result.stage, self.result.key_id = target.stage or CURRENT, target.key_id
            self.say("push", f"SmartTrace accepted keyId {target.key_id}")
        return self.result

    # ---- the run

    def now(self) -> datetime:
        return self.deps.clock.now()

    def say(self, step: str, message: str) -> None:
        line = f"{step}: {'would ' if self.dry_run and not message.startswith(('not ', 'nothing', 'waiting')) else ''}{message}"
        log.info("rotate %s %s", self.app.facility, line)
        self.result.actions.append(line)

    async def _run(self) -> None:
        app = self.app
        registration = self.registration = await self.deps.writer.read_app(app.tenant_id, app.app_id)
        self.versions = await self.deps.vault.versions(app.vault_secret_name)
        await self._abandon_stale_copies()
        await self._sweep(registration)
        await self._retire()
        flight = in_flight(self.versions)
        if flight is not None and flight.key_id not in {c.key_id.lower() for c in registration.password_credentials}:
            flight = await self._unseen(flight)
        if flight is None:
            current = current_version(self.versions)
            credential = _credential(registration, current.key_id if current else None)
            end = credential.end if credential else None
            if not rotation_due(end, self.now(), app.rotation.rotate_before_days, force=self.force):
                days = days_until(end, self.now()) if end else 0
                self.say("plan", f"not due: the current secret has {days} days left (rotation starts at {app.rotation.rotate_before_days})")
                self.result.stage = CURRENT if current else "idle"
                return
            if app.rotation.mode == "notify-only":
                self.say("plan", "nothing changed: notify-only mode; the administrator renews the secret by hand")
                await self._notify(
                    "due", f"The client secret of {app.facility} is due for renewal (notify-only mode).", key_id=credential.key_id if credential else None
                )
                self.result.stage = "due"
                return
            await self._preflight()
            created = await self._create_and_store(registration)
            if created is None:  # dry run
                self.say("verify", "verify the new secret at Entra, then hand it off, then finish")
                self.result.stage = "due"
                return
            flight, self.secret = created
        await self._advance(flight)

    async def _advance(self, flight: VaultVersion) -> None:
        """Move the rotation in flight on, step by step, until it must wait (for
        propagation, or for a person) or is finished: the table below is the protocol
        from the first stage on, one step per stage, each ``(version) -> version``."""
        steps = {PENDING: self._verify_step, VERIFIED: self._hand_off_step, AWAITING: self._remind_step, HANDED_OFF: self._finish_step}
        self.result.key_id = flight.key_id
        while flight.stage in steps:
            moved = await steps[flight.stage](flight)
            if moved.stage == flight.stage:  # it waits, or this is a dry run
                break
            flight = moved
        self.result.stage = flight.stage or "idle"

    async def _secret_of(self, flight: VaultVersion) -> SecretValue:
        if self.secret is None:
            self.secret = await self.deps.vault.value(self.app.vault_secret_name, flight.version)
        return self.secret

    async def _verify_step(self, flight: VaultVersion) -> VaultVersion:
        if self.dry_run:
            self.say("verify", f"verify keyId {flight.key_id} at Entra")
            return flight
        if not await self._verify(flight, await self._secret_of(flight)):
            return flight
        return await self._retag(flight, stage=VERIFIED, verifiedAt=stamp(self.now()))

    async def _hand_off_step(self, flight: VaultVersion) -> VaultVersion:
        return await self._hand_off(flight)

    async def _remind_step(self, flight: VaultVersion) -> VaultVersion:
        if self._confirms_by_activity():
            confirmed, flight, _ = await self._activity_confirmation(flight)
            if confirmed is not None:
                return confirmed
        await self._remind(flight)
        return flight

    async def _finish_step(self, flight: VaultVersion) -> VaultVersion:
        return await self._finish(flight)

    # ---- a rotation's credential that the read of the app did not show

    async def _unseen(self, flight: VaultVersion) -> VaultVersion | None:
        """Graph's reads lag its writes: one read without the credential proves nothing
        while it is young. Abandon only past the window, and then for real: remove the
        credential (it may still exist) and disable the version, in one step."""
        if not missing_too_long(flight, self.now()):
            self.say("resume", f"credential {flight.key_id} is not in Graph's answer yet (reads lag writes); going on")
            return flight
        if not may_abandon(flight, self.now()):
            self.say("resume", f"credential {flight.key_id} is gone from the app, and SmartTrace may hold it ({flight.stage}): a person must look")
            await self._notify(
                "failed",
                f"The new client secret {flight.key_id} of {self.app.facility} ({flight.stage}) is not on the app registration: "
                "if SmartTrace holds it, sign-in fails. Check Certificates & secrets; if it was deleted, run a forced rotation and paste the new secret.",
                key_id=flight.key_id,
            )
            return flight
        self.say("resume", f"credential {flight.key_id} of the unfinished rotation has been missing for over {UNSEEN_WINDOW}; abandon it")
        if self.dry_run:
            return None
        assert flight.key_id
        await self._remove_password(flight.key_id)
        await self._retag(flight, stage=ABANDONED, abandonedAt=stamp(self.now()), enabled=False)
        return None

    # ---- stale copies: a retried store wrote the same keyId twice

    async def _abandon_stale_copies(self) -> None:
        for version in stale_copies(self.versions):
            self.say("resume", f"version {version.version} repeats keyId {version.key_id} of a newer version (a retried store); abandoned it")
            if not self.dry_run:
                await self._retag(version, stage=ABANDONED, abandonedAt=stamp(self.now()))

    # ---- sweep: our credentials that Key Vault does not know

    async def _sweep(self, registration: AppRegistration) -> None:
        deployment = self.app.deployment_id
        if not orphans(registration.password_credentials, self.versions, self.now(), self.settings.sweep_window, deployment):
            return
        # A version stored by hand (no keyId tag) may hold one of them: learn which by
        # its hint before anything is removed, or do not sweep at all.
        hints: set[str] = set()
        for version in untagged_versions(self.versions):
            try:
                hints.add((await self.deps.vault.value(self.app.vault_secret_name, version.version)).reveal()[:3])
            except ExternalError as exc:
                self.say("sweep", f"nothing removed: version {version.version} has no keyId tag and could not be read ({type(exc).__name__}); adopt it first")
                return
        for credential in orphans(
            registration.password_credentials, self.versions, self.now(), self.settings.sweep_window, deployment, held_hints=frozenset(hints)
        ):
            if self.dry_run:
                self.say("sweep", f"remove orphan credential {credential.key_id} ({credential.display_name})")
                continue
            await self._remove_password(credential.key_id)
            self.say("sweep", f"removed orphan credential {credential.key_id} ({credential.display_name})")
            await self._notify(
                "orphan-removed", f"Removed client secret {credential.key_id}, created by an interrupted rotation and never stored.", key_id=credential.key_id
            )

    # ---- retire: previous credentials after the grace period, only our own

    async def _retire(self) -> None:
        live = {v.key_id for v in (current_version(self.versions), in_flight(self.versions)) if v is not None and v.key_id}
        in_use = await self._old_still_used()
        for version in retirable(self.versions, self.now(), self.app.rotation.grace_days):
            if version.key_id in live:
                # Never remove the credential SmartTrace holds, or the one on its way there.
                self.say("retire", f"leave credential {version.key_id} in place: a newer version holds the same keyId")
                if not self.dry_run:
                    await self._retag(version, stage=SUPERSEDED, supersededAt=stamp(self.now()))
                continue
            if version.key_id in in_use:
                # A weak signal may only delay: seen in use, it is kept (and watched) past the grace period.
                self.say(
                    "retire", f"keep previous credential {version.key_id}: Entra's activity report shows SmartTrace still using it (OLD_SECRET_STILL_IN_USE)"
                )
                continue
            if not is_managed(version) or not version.key_id:
                self.say("retire", f"leave credential {version.key_id} in place: not created or adopted by the monitor (remove it by hand or adopt it)")
                if not self.dry_run:
                    await self._retag(version, stage=SUPERSEDED, supersededAt=stamp(self.now()))
                continue
            if self.dry_run:
                self.say("retire", f"remove previous credential {version.key_id}")
                continue
            removed = await self._remove_password(version.key_id)
            self.say("retire", f"removed previous credential {version.key_id}{'' if removed else ' (it was already gone)'}")
            await self._retag(version, stage=RETIRED, retiredAt=stamp(self.now()), enabled=False)
            await self._notify(
                "retired",
                f"Removed the previous client secret {version.key_id}{'' if removed else ' (it was already gone)'}. "
                f"If sign-in through SmartTrace fails from now on (SIGN_IN_FAILING), SmartTrace still held it: create a new secret "
                f"(sso-monitor rotate {self.app.facility} --force) and paste it into SmartTrace at {self.app.facility_url} "
                "(Integrations, Azure Active Directory, pencil (edit), Client secret, Save).",
                key_id=version.key_id,
            )

    async def _old_still_used(self) -> set[str]:
        """Previous keyIds that Entra's activity report shows used after they became previous
        (the monitor stopped using them then: the check probes the current version) plus the
        margin, within the last grace period: kept, and OLD_SECRET_STILL_IN_USE, said at once
        and again as its severity rises with the old secret's expiry. Without the report (not
        read, refused, failed) nothing is kept: the grace period decides, as without it. The
        report's silence never hastens anything."""
        if not self._reads_activity():
            return set()
        watched = [
            (v, since) for v in ordered(self.versions) if v.stage == PREVIOUS and v.key_id and (since := unstamp(v.tags.get("previousSince"))) is not None
        ]
        if not watched:
            return set()
        report = await self._read_activity()
        if isinstance(report, ReadFailure):
            self.result.findings.append(
                finding(
                    "ACTIVITY_REPORT_UNAVAILABLE",
                    f"Entra's records cannot show whether SmartTrace still uses a previous secret: {report.detail}; retirement follows the grace period",
                    reason=report.detail,
                )
            )
            # What an earlier run saw stands: a failed read lets nothing go that was seen in use.
            seen = {v.key_id for v, _ in watched if v.key_id and v.tags.get(ACTIVITY_TAG, "").startswith("still-used")}
            self.say(
                "retire",
                f"Entra's activity report not usable ({report.detail}); the grace period decides, as without it"
                + (f", except for {', '.join(sorted(seen))}, seen in use by an earlier run" if seen else ""),
            )
            return seen
        now, grace = self.now(), timedelta(days=max(self.app.rotation.grace_days, 1))
        in_use: set[str] = set()
        for version, since in watched:
            assert version.key_id
            last = still_used_after(version.key_id, since, report)
            if last is None or now >= last + grace:
                continue
            in_use.add(version.key_id)
            credential = _credential(self.registration, version.key_id) if self.registration is not None else None
            found = self._still_in_use(version.key_id, last, since, credential.end if credential else version.expires)
            self.result.findings.append(found)
            mark = f"still-used:{found.severity.value}"
            if self.dry_run or version.tags.get(ACTIVITY_TAG) == mark:
                continue
            current = current_version(self.versions)
            where = (
                f"Key Vault {self.deps.vault_url or 'the monitor vault'}, secret {self.app.vault_secret_name}, version {current.version} (keyId {current.key_id})"
                if current is not None
                else f"the current version of Key Vault secret {self.app.vault_secret_name}"
            )
            await self._notify(
                "still-in-use",
                f"OLD_SECRET_STILL_IN_USE ({found.severity.value}): {found.message} Paste the new one: {where}, into SmartTrace at "
                f"{self.app.facility_url}: Integrations, Azure Active Directory, pencil (edit), Client secret, Save; then sign in once.",
                key_id=version.key_id,
                found=found,
            )
            await self._retag(version, activity=mark)
        return in_use

    # ---- create and store

    async def _preflight(self) -> None:
        """Refusals known before anything is created (in a dry run too): a credential is
        never made only to be removed again, run after run."""
        app = self.app
        owns, monitor = await self.deps.writer.monitor_owns(app.tenant_id, app.app_id)
        if owns is False:
            raise RotationFailed(f"create: Graph would refuse: {owner_add_fix(app.app_id, monitor or 'MONITOR_OBJECT_ID')}")
        if not self.versions and await self.deps.vault.is_deleted(app.vault_secret_name):
            raise RotationFailed(
                f"store: Key Vault secret {app.vault_secret_name} is deleted but recoverable (soft delete), so its name cannot be used; "
                f"recover it (az keyvault secret recover --id {self.deps.vault_url.rstrip('/')}/secrets/{app.vault_secret_name}) "
                "or purge it, then run again; nothing was created"
            )

    async def _create_and_store(self, registration: AppRegistration) -> tuple[VaultVersion, SecretValue] | None:
        app, now = self.app, self.now()
        lifetime = await self.deps.writer.read_policy(app.tenant_id, app.app_id)
        end = new_end(now, app.rotation.lifetime_days, lifetime.policy)
        rotation_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        name = marker_name(app.deployment_id, rotation_id)
        if self.dry_run:
            self.say("create", f"add a client secret '{name}' ending {stamp(end)}")
            self.say("store", f"store it as a new version of Key Vault secret {app.vault_secret_name}, stage pending")
            return None
        await self._notify("started", f"Rotating the client secret of {app.facility}.")
        new = await self._create(name, end, lifetime)
        self.say("create", f"added client secret '{new.display_name}' (keyId {new.key_id}) ending {stamp(new.end)}")
        tags = {
            "stage": PENDING,
            "keyId": new.key_id.lower(),
            "rotationId": rotation_id,
            "managed": "true",
            "createdAt": stamp(now),
            STORED_AT: stored_stamp(self.now()),
        }
        try:
            version = await self._add_version(new.secret, tags, new.end)
        except ExternalError as exc:
            await self._compensate(new, exc)
            raise RotationFailed(f"store: Key Vault did not take the new version ({exc}); the new credential was removed") from exc
        self.versions.append(version)
        self.say("store", f"stored keyId {new.key_id} as version {version.version} of {app.vault_secret_name}, stage pending")
        return version, new.secret

    async def _create(self, name: str, end: datetime, lifetime: LifetimePolicy) -> NewCredential:
        app = self.app
        try:
            return await self._add_password(name, end)
        except LifetimeExceedsPolicy as exc:
            # Once more, shorter: to the cap the monitor knows, else to a cautious fallback.
            retry = capped_end(self.now(), lifetime.policy) or fallback_end(self.now())
            who = refusing_policy(exc.policy_id)
            if retry >= end:
                raise RotationFailed(lifetime_refusal(who, end, lifetime.unreadable)) from exc
            self.say("create", f"{who} refused an end of {stamp(end)}; retrying once with {stamp(retry)}")
            try:
                return await self._add_password(name, retry)
            except LifetimeExceedsPolicy as again:
                raise RotationFailed(lifetime_refusal(refusing_policy(again.policy_id), retry, lifetime.unreadable)) from again
        except AnswerLost:
            # The secret may exist, but its value was in the lost answer: look for our
            # marker, remove what we find (we can never use it), then create once more.
            registration = await self.deps.writer.read_app(app.tenant_id, app.app_id)
            for credential in registration.password_credentials:
                if credential.display_name == name:
                    await self._remove_password(credential.key_id)
                    self.say("create", f"the answer was lost; removed credential {credential.key_id} whose value was never seen")
            return await self._add_password(f"{name}-2", end)

    async def _compensate(self, new: NewCredential, cause: Exception) -> None:
        # Not behind the lease on purpose: this credential is ours, its value never reached
        # Key Vault, so no other run can know or need it; removing it can only help.
        try:
            await self.deps.writer.remove_password(self.app.tenant_id, self.app.app_id, new.key_id)
            self.say("store", f"failed ({type(cause).__name__}); removed the new credential {new.key_id}")
        except ExternalError as exc:
            self.say("store", f"failed, and removing credential {new.key_id} failed too ({exc}); the next sweep removes it")

    # ---- verify

    async def _verify(self, flight: VaultVersion, secret: SecretValue) -> bool:
        """Token requests with the new secret until it works ``verify_successes`` times in a
        row, spaced by ``verify_wait``. Any other answer resets the streak (Entra's replicas
        can accept a new secret on one request and refuse it on the next); a refusal of
        the app itself stops; past the deadline the run ends pending and the next resumes."""
        clock, settings = self.deps.clock, self.settings
        deadline = clock.now() + timedelta(seconds=settings.verify_deadline)
        streak = misses = attempts = 0
        while True:
            attempts += 1
            probe = await self.deps.probe.probe(self.app.tenant_id, self.app.app_id, secret)
            if probe.outcome is ProbeOutcome.REFUSED:
                # Not the secret (app disabled, no service principal, Conditional Access):
                # waiting for propagation cannot help; the next run tries again.
                self.say(
                    "verify", f"Entra refuses app {self.app.app_id} itself ({probe.code}), not the new secret; not handing it on, the next run tries again"
                )
                return False
            streak, misses = (streak + 1, 0) if probe.outcome is ProbeOutcome.WORKS else (0, misses + 1)
            if streak >= settings.verify_successes:
                self.say("verify", f"keyId {flight.key_id} worked {streak} times in a row ({attempts} attempts)")
                return True
            if clock.now() >= deadline:
                self.say(
                    "verify",
                    f"waiting for propagation: keyId {flight.key_id} not yet reliable after {attempts} attempts ({probe.code or probe.outcome.value}); the next run resumes",
                )
                return False
            await clock.sleep(verify_wait(settings, streak, misses))

    # ---- hand off

    async def _hand_off(self, flight: VaultVersion) -> VaultVersion:
        app = self.app
        handoff = app.handoff
        expires = flight.expires or self.now()
        if handoff.mode == "http":
            assert handoff.url and handoff.token_secret_name
            if self.dry_run:
                self.say("hand off", f"push keyId {flight.key_id} to SmartTrace at {handoff.url}")
                return flight
            await self._push(flight, await self._secret_of(flight), expires)
            self.say("hand off", f"pushed keyId {flight.key_id} to SmartTrace at {handoff.url}; SmartTrace confirmed it")
            return await self._retag(flight, stage=HANDED_OFF, handedOffAt=stamp(self.now()))
        if self.dry_run:
            self.say("hand off", f"ask the administrator of {app.facility} to paste keyId {flight.key_id} into SmartTrace, then wait for confirmation")
            return flight
        old = self._old_credential()
        await self._notify(
            "awaiting-confirmation",
            f"A new client secret for {app.facility} is ready; SmartTrace needs it.",
            key_id=flight.key_id,
            handoff=self.handoff_facts(flight, old),
        )
        self.say("hand off", f"asked the administrator of {app.facility} to paste keyId {flight.key_id} into SmartTrace; waiting for confirmation")
        threshold = escalation_threshold(old.end if old else None, self.now(), app.thresholds)
        return await self._retag(flight, stage=AWAITING, notifiedAt=stamp(self.now()), notifiedThreshold=str(threshold or ""))

    def _old_credential(self) -> PasswordCredentialInfo | None:
        """The credential SmartTrace holds now, as this run read the app."""
        if self.registration is None:
            return None
        return _credential(self.registration, (current_version(self.versions) or VaultVersion("")).key_id)

    def handoff_facts(self, flight: VaultVersion, old: PasswordCredentialInfo | None) -> HandoffFacts:
        app = self.app
        current = current_version(self.versions)
        return HandoffFacts(
            facility=app.facility,
            facility_url=app.facility_url,
            vault_url=self.deps.vault_url,
            secret_name=app.vault_secret_name,
            version=flight.version,
            key_id=flight.key_id or "",
            old_key_id=old.key_id if old else None,
            old_end=old.end if old else None,
            # hands off what is not ours: a secret made by hand is never removed by the monitor
            old_managed=current is not None and is_managed(current),
            grace_days=app.rotation.grace_days,
            confirmation=app.handoff.confirmation,
        )

    async def _remind(self, flight: VaultVersion) -> None:
        old = self._old_credential()
        threshold = escalation_threshold(old.end if old else None, self.now(), self.app.thresholds)
        last = flight.tags.get("notifiedThreshold") or ""
        self.say("hand off", f"waiting for the administrator to confirm keyId {flight.key_id}")
        if threshold is None or (last and int(last) <= threshold) or self.dry_run:
            return
        seen = next((f for f in self.result.findings if f.code == "OLD_SECRET_STILL_IN_USE"), None)
        await self._notify(
            "reminder",
            (f"OLD_SECRET_STILL_IN_USE: {seen.message} " if seen else "")
            + f"Still waiting: SmartTrace for {self.app.facility} needs the new client secret; the old one expires in {days_until(old.end, self.now()) if old and old.end else '?'} days.",
            key_id=flight.key_id,
            handoff=self.handoff_facts(flight, old),
        )
        await self._retag(flight, notifiedThreshold=str(threshold), notifiedAt=stamp(self.now()))

    # ---- Entra's records: confirmation by activity, the old secret still in use (docs/evidence.md)

    def _reads_activity(self) -> bool:
        """Entra's records are read for this app: a reader is wired, and the app asks for them
        (signIns.enabled, or a confirmation by activity)."""
        return self.deps.signins is not None and (self.app.sign_ins.enabled or self.app.handoff.confirmation != "manual")

    def _confirms_by_activity(self) -> bool:
        return self.app.handoff.mode == "manual" and self.app.handoff.confirmation in ("activity", "activity-or-manual") and self._reads_activity()

    async def _read_activity(self) -> CredentialActivity | ReadFailure:
        assert self.deps.signins is not None
        try:
            return await self.deps.signins.credential_activity(self.app.tenant_id, self.app.app_id)
        # Broad on purpose: a record that cannot be read never confirms and never retires;
        # it only leaves the decision to a person and to the grace period.
        except Exception as exc:
            return ReadFailure(Problem.FAILED, f"credential-activity report: not read ({type(exc).__name__})")

    async def _read_sign_ins(self, since: datetime) -> SignInLog | ReadFailure:
        assert self.deps.signins is not None
        try:
            return await self.deps.signins.recent_sign_ins(self.app.tenant_id, [self.app.app_id], since)
        except Exception as exc:  # as above
            return ReadFailure(Problem.FAILED, f"sign-in log: not read ({type(exc).__name__})")

    async def _activity_confirmation(self, flight: VaultVersion) -> tuple[VaultVersion | None, VaultVersion, bool]:
        """While a manual handoff waits: do Entra's records show SmartTrace using the new keyId?
        Its last activity later than the monitor's own last use (the verify step's end: after
        it the monitor never sends the new secret until it is current; the check probes the
        current version only) plus ACTIVITY_MARGIN, and a successful sign-in through SmartTrace
        at or after it. Then the same path as a person's confirmation, with the evidence in the
        alert. Answers (the finished version or None, the flight as now tagged, whether the
        records were usable)."""
        key_id = flight.key_id
        own_use = unstamp(flight.tags.get("verifiedAt"))
        if not key_id or own_use is None:
            self.say("hand off", f"the monitor's own last use of keyId {key_id} is not recorded; waiting for a person's confirmation")
            return None, flight, False
        now = self.now()
        report = await self._read_activity()
        why = report_unusable(report, {key_id: own_use}, now)
        if why is not None or isinstance(report, ReadFailure):
            return None, await self._activity_unavailable(flight, why or "unreadable"), False
        self._old_seen_in_use(report, flight)
        last = report.last_used.get(key_id)
        if last is None or last <= own_use + ACTIVITY_MARGIN:
            seen = f"its last recorded use, {stamp(last)}, is the monitor's own (verified {stamp(own_use)})" if last else "no use of it is recorded yet"
            self.say("hand off", f"Entra's activity report does not show SmartTrace using keyId {key_id}: {seen}; waiting")
            return None, flight, True
        sign_ins = await self._read_sign_ins(own_use)
        if isinstance(sign_ins, ReadFailure):
            return None, await self._activity_unavailable(flight, sign_ins.detail), False
        evidence = activity_confirms(key_id, own_use, report, sign_ins, self.app.app_id)
        if evidence is None:
            self.say(
                "hand off",
                f"keyId {key_id} was used at {stamp(last)}, but no successful sign-in through SmartTrace followed it in Entra's sign-in log; waiting",
            )
            return None, flight, True
        if self.dry_run:
            self.say("confirm", f"confirm keyId {key_id} by activity: {evidence.describe()}")
            return None, flight, True
        confirmed = await self._confirmed(
            flight,
            f"activity: keyId used {stamp(evidence.key_last_used)}, sign-in {stamp(evidence.sign_in_at)}",
            f"Entra's records show SmartTrace using keyId {key_id}: {evidence.describe()}",
            evidence=evidence.describe(),
        )
        return confirmed, confirmed, True

    async def _activity_unavailable(self, flight: VaultVersion, why: str) -> VaultVersion:
        """The records cannot confirm: a finding, and (once) the administrator is told a
        person's confirmation is needed after all."""
        self.result.findings.append(
            finding(
                "ACTIVITY_REPORT_UNAVAILABLE",
                f"Entra's records cannot confirm the handoff of keyId {flight.key_id}: {why}; a person confirms it instead",
                reason=why,
                key_id=flight.key_id,
            )
        )
        self.say("hand off", f"Entra's records cannot confirm keyId {flight.key_id} ({why}); waiting for a person's confirmation")
        if self.dry_run or flight.tags.get(ACTIVITY_TAG) == UNAVAILABLE:
            return flight
        await self._notify(
            "awaiting-confirmation",
            f"The new client secret of {self.app.facility} cannot be confirmed from Entra's records ({why}): confirm by hand once SmartTrace holds it.",
            key_id=flight.key_id,
            handoff=self.handoff_facts(flight, self._old_credential()),
        )
        return await self._retag(flight, activity=UNAVAILABLE)

    def _old_seen_in_use(self, report: CredentialActivity, flight: VaultVersion) -> None:
        """While waiting: the old (current) keyId used after the administrator was asked is
        OLD_SECRET_STILL_IN_USE, rising as its expiry nears (the reminders carry it)."""
        old = self._old_credential()
        asked = unstamp(flight.tags.get("notifiedAt"))
        if old is None or asked is None:
            return
        last = still_used_after(old.key_id, asked, report)
        if last is not None:
            self.result.findings.append(self._still_in_use(old.key_id, last, asked, old.end))

    def _still_in_use(self, key_id: str, last: datetime, since: datetime, end: datetime | None) -> Finding:
        days = days_until(end, self.now()) if end is not None else None
        severity = Severity.CRITICAL if days is None or days <= 7 else Severity.ERROR if days <= 14 else Severity.WARNING
        return finding(
            "OLD_SECRET_STILL_IN_USE",
            f"SmartTrace still signs in with the old secret: paste the new one. Entra's credential-activity report shows keyId {key_id.lower()} "
            f"used at {stamp(last)}, after {stamp(since)} (+{int(ACTIVITY_MARGIN.total_seconds() // 60)} min)"
            + (f"; it expires {stamp(end)} ({days} days)" if end is not None else "")
            + ". The monitor keeps it while it is used.",
            severity=severity,
            key_id=key_id.lower(),
            last_used=stamp(last),
            since=stamp(since),
        )

    # ---- finish

    async def _finish(self, flight: VaultVersion, evidence: str | None = None) -> VaultVersion:
        now = self.now()
        if self.dry_run:
            self.say(
                "finish",
                f"make keyId {flight.key_id} current; the old secret becomes previous (removed after {self.app.rotation.grace_days} days if the monitor created or adopted it)",
            )
            return flight
        # Old to previous first: after a crash between the two, the flight is still
        # handed-off and the next run finishes it again.
        for version in ordered(self.versions):
            if version.version == flight.version:
                continue
            legacy = version.stage is None and version is current_version(self.versions)
            if version.stage == CURRENT or legacy:
                await self._retag(version, stage=PREVIOUS, previousSince=stamp(now))
        flight = await self._retag(flight, stage=CURRENT, currentSince=stamp(now))
        self.say(
            "finish",
            f"keyId {flight.key_id} is current; the old secret is previous (removed after {self.app.rotation.grace_days} days if the monitor created or adopted it)",
        )
        self.result.stage = CURRENT
        await self._notify(
            "completed",
            f"Rotation of {self.app.facility} complete: keyId {flight.key_id} is current." + (f" Confirmed by {evidence}." if evidence else ""),
            key_id=flight.key_id,
        )
        return flight

    # ---- helpers

    # Every write goes through one of these: the lease is confirmed immediately before.

    async def _add_password(self, name: str, end: datetime) -> NewCredential:
        await self._still_ours()
        return await self.deps.writer.add_password(self.app.tenant_id, self.app.app_id, name, end)

    async def _remove_password(self, key_id: str) -> bool:
        await self._still_ours()
        return await self.deps.writer.remove_password(self.app.tenant_id, self.app.app_id, key_id)

    async def _add_version(self, value: SecretValue, tags: dict[str, str], expires: datetime | None) -> VaultVersion:
        await self._still_ours()
        return await self.deps.vault.add_version(self.app.vault_secret_name, value, tags=tags, expires=expires)

    async def _push(self, version: VaultVersion, secret: SecretValue, expires: datetime) -> None:
        handoff = self.app.handoff
        assert handoff.url and handoff.token_secret_name and version.key_id
        token = await self.deps.vault.read_secret(handoff.token_secret_name)
        await self._still_ours()
        await self.deps.pusher.push(
            url=handoff.url,
            method=handoff.method,
            token=token,
            facility=self.app.facility,
            tenant_id=self.app.tenant_id,
            app_id=self.app.app_id,
            key_id=version.key_id,
            secret=secret,
            expires=expires,
        )

    async def _still_ours(self) -> None:
        """Immediately before every write: the lease, confirmed with the service now. A
        lost lease means another run may be acting: stop before writing."""
        if self.held is not None:
            await self.held.confirm()

    async def _retag(self, version: VaultVersion, *, enabled: bool | None = None, **changes: str) -> VaultVersion:
        await self._still_ours()
        tags = {**version.tags, **changes}
        await self.deps.vault.set_tags(self.app.vault_secret_name, version.version, tags, enabled=enabled)
        updated = VaultVersion(version.version, tags, version.enabled if enabled is None else enabled, version.expires, version.created)
        self.versions = [updated if v.version == version.version else v for v in self.versions]
        return updated

    async def _notify(self, kind: str, message: str, *, key_id: str | None = None, handoff: HandoffFacts | None = None, found: Finding | None = None) -> None:
        event = RotationEvent(kind, self.app.facility, self.app.tenant_id, self.app.app_id, message, key_id, handoff)
        if found is not None:  # the alert's severity is the finding's, not the kind's
            event.severity, event.code = found.severity.value, found.code
        await self.deps.notifier.notify(event)


def _credential(registration: AppRegistration, key_id: str | None) -> PasswordCredentialInfo | None:
    if not key_id:
        return None
    return next((c for c in registration.password_credentials if c.key_id.lower() == key_id.lower()), None)


# ---------------------------------------------------------------- status and adopt


@dataclass
class RotationStatus:
    facility: str
    stage: str  # idle | current | pending | verified | awaiting-confirmation | handed-off
    current_key_id: str | None = None
    current_expires: datetime | None = None
    in_flight_key_id: str | None = None
    in_flight_since: str | None = None
    retiring: list[str] = field(default_factory=list)  # previous keyIds waiting out the grace period


async def rotation_status(app: AppConfig, deps: RotationDeps) -> RotationStatus:
    """Where the app's rotation stands, from Key Vault tags alone (read-only)."""
    versions = await deps.vault.versions(app.vault_secret_name)
    current = current_version(versions)
    flight = in_flight(versions)
    return RotationStatus(
        facility=app.facility,
        stage=flight.stage if flight and flight.stage else (CURRENT if current else "idle"),
        current_key_id=current.key_id if current else None,
        current_expires=current.expires if current else None,
        in_flight_key_id=flight.key_id if flight else None,
        in_flight_since=flight.tags.get("createdAt") if flight else None,
        retiring=[v.key_id for v in versions if v.stage == PREVIOUS and v.key_id],
    )


async def adopt(app: AppConfig, deps: RotationDeps, value: SecretValue | None, key_id: str | None = None) -> RotationResult:
    """Bring a hand-made secret under management: store it (or take the one already
    in Key Vault), match it to its keyId, and tag it current and managed."""
    result = RotationResult(app.facility, stage="idle")
    async with deps.lease.hold(lease_key(app)) as held:
        registration = await deps.writer.read_app(app.tenant_id, app.app_id)
        versions = await deps.vault.versions(app.vault_secret_name)
        existing = current_version(versions)
        if value is None:
            if existing is None:
                raise RotationFailed(f"adopt: Key Vault has no {app.vault_secret_name}; pass the secret value on standard input")
            value = await deps.vault.value(app.vault_secret_name, existing.version)
        credential = _match(registration, value, key_id)
        probe = await deps.probe.probe(app.tenant_id, app.app_id, value)
        if probe.outcome is not ProbeOutcome.WORKS:
            raise RotationFailed(f"adopt: Entra refuses this secret for app {app.app_id} ({probe.code or probe.detail}); nothing was stored")
        now = deps.clock.now()
        tags = {
            "stage": CURRENT,
            "keyId": credential.key_id.lower(),
            "managed": "true",
            "adoptedAt": stamp(now),
            "currentSince": stamp(now),
            STORED_AT: stored_stamp(now),
        }
        for version in versions:
            if version.stage == CURRENT and version.key_id != credential.key_id.lower():
                await held.confirm()
                await deps.vault.set_tags(app.vault_secret_name, version.version, {**version.tags, "stage": PREVIOUS, "previousSince": stamp(now)})
        if (
            existing is not None
            and existing.key_id in (None, credential.key_id.lower())
            and value == await deps.vault.value(app.vault_secret_name, existing.version)
        ):
            await held.confirm()
            await deps.vault.set_tags(app.vault_secret_name, existing.version, {**existing.tags, **tags})
            if existing.expires != credential.end:
                result.actions.append("adopt: Key Vault expiry differs from Entra's end date; stored a fresh version with the right expiry")
                await held.confirm()
                await deps.vault.add_version(app.vault_secret_name, value, tags=tags, expires=credential.end)
                await held.confirm()
                await deps.vault.set_tags(app.vault_secret_name, existing.version, {**existing.tags, "stage": SUPERSEDED})
        else:
            await held.confirm()
            await deps.vault.add_version(app.vault_secret_name, value, tags=tags, expires=credential.end)
        result.actions.append(f"adopt: keyId {credential.key_id} (hint {credential.hint}) is now managed and current in {app.vault_secret_name}")
        result.stage, result.key_id = CURRENT, credential.key_id.lower()
    return result


def _match(registration: AppRegistration, value: SecretValue, key_id: str | None) -> PasswordCredentialInfo:
    """Which credential the value belongs to: by keyId when given, else by its hint
    (Graph keeps a secret's first three characters); ambiguity needs --key-id."""
    if key_id:
        found = _credential(registration, key_id)
        if found is None:
            raise NotFound("graph", f"app {registration.app_id} has no client secret with keyId {key_id}")
        if found.hint and not value.reveal().startswith(found.hint):
            raise RotationFailed(f"adopt: the value does not start with keyId {key_id}'s hint {found.hint}")
        return found
    candidates = [c for c in registration.password_credentials if c.hint and value.reveal().startswith(c.hint)]
    if not candidates:
        raise RotationFailed(f"adopt: no client secret of app {registration.app_id} has this value's hint; check the value, or pass --key-id")
    if len(candidates) > 1:
        ids = ", ".join(c.key_id for c in candidates)
        raise RotationFailed(f"adopt: several client secrets share this value's hint ({ids}); pass --key-id")
    return candidates[0]
