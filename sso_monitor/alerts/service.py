"""Alerting against the store and the channels: decide (sso_monitor/alerts.py),
remember, deliver, and never lose a notice silently.

Order of work, so that a crash at any point neither loses nor (mostly) repeats:

1. decide the alerts against the stored state;
2. write each new notice to the outbox;
3. write the new state (what was alerted);
4. deliver the outbox, oldest first, deleting each notice once delivered.

A notice a channel would not take stays in the outbox and is tried again by
every later run, for ``OUTBOX_MAX_AGE``; a channel that fails is reported once
per outage to the operations route (through the other channels), and the run
reports it (the timer then fails loudly). Delivery is at least once: a crash
between a delivery and its outbox delete repeats that one notice.

Store layout (partition: key -> data); keys are ``<facility>.<code>`` and the like:

    findings: what was last alerted per app and code (alerts.FindingState)
    snoozes:  snoozed findings (alerts.Snooze)
    events:   rotation events and monitor failures already said (de-duplication)
    outbox:   notices not yet delivered
    digest:   alerts waiting for the day's digest
    meta:     the last digest day; channels currently down
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sso_monitor.alerts.decisions import (
    FindingState,
    Snooze,
    compose,
    compose_digest,
    digest_due,
    event_key,
    failure_alert,
    failure_key,
    finding_alerts,
    immediate,
    repeat_due,
    rotation_alert,
    route,
    routed,
)
from sso_monitor.alerts.ports import CHANNEL_DOWN, Alert, AlertChannel, AlertStore, ChannelError, Notice, StoredItem
from sso_monitor.checks.findings import CODES
from sso_monitor.config import MonitorConfig
from sso_monitor.errors import MonitorError

log = logging.getLogger(__name__)

FINDINGS, SNOOZES, EVENTS, OUTBOX, DIGEST, META = "findings", "snoozes", "events", "outbox", "digest", "meta"
OUTBOX_MAX_AGE = timedelta(days=7)
# How long a run holds a notice it is sending (longer than a channel's timeouts and retries):
# if the run dies meanwhile, another run sends it after this. Real time, whatever the run's
# ``now``: the claim is between processes.
OUTBOX_CLAIM = timedelta(minutes=10)


def clock_now() -> datetime:
    return datetime.now(UTC)


EVENT_MEMORY = timedelta(days=120)
MAX_FAILURE_LINES = 30
BURST = 10  # more notices than this for one channel in one run are bundled  # de-duplication entries older than this are forgotten


class UnknownCode(MonitorError):
    pass


@dataclass
class DeliveryReport:
    sent: list[Notice] = field(default_factory=list)
    undelivered: list[tuple[Notice, str]] = field(default_factory=list)  # (notice, why), kept in the outbox
    dropped: list[tuple[Notice, str]] = field(default_factory=list)  # given up on (too old, channel removed)
    unrouted: list[Alert] = field(default_factory=list)  # no channel configured: logged only

    @property
    def ok(self) -> bool:
        return not self.undelivered and not self.dropped

    def problems(self) -> list[str]:
        return [f"alert to {n.channel} not delivered: {why}" for n, why in self.undelivered] + [
            f"alert to {n.channel} dropped: {why}" for n, why in self.dropped
        ]


class Alerting:
    def __init__(self, config: MonitorConfig, store: AlertStore, channels: Mapping[str, AlertChannel], *, closing: Sequence[Any] = ()) -> None:
        self.config = config
        self.store = store
        self.channels = channels
        self.closing = closing  # what else to close with it (the channels' secret source)

    async def aclose(self) -> None:
        for channel in self.channels.values():
            await channel.aclose()
        await self.store.aclose()
        for part in self.closing:
            await part.aclose()

    # ---------------------------------------------------------------- inputs

    async def after_check(self, results: Sequence[Any], now: datetime, failures: Sequence[str] = ()) -> DeliveryReport:
        """Alerts from a check run's results (run.AppResult) and the run's own failures."""
        policy = self.config.alerts
        previous = _by_facility(await self.store.list(FINDINGS), FindingState.from_dict)
        snoozes = _by_facility(await self.store.list(SNOOZES), Snooze.from_dict)
        alerts: list[Alert] = []
        puts: list[StoredItem] = []
        deletes: list[str] = []
        failure_texts = list(failures)
        for result in results:
            app = result.app
            found, changes = finding_alerts(app, result.findings, previous.get(app.facility, {}), snoozes.get(app.facility, {}), now, policy)
            alerts.extend(found)
            for code, state in changes.items():
                if state is None:
                    deletes.append(f"{app.facility}.{code}")
                else:
                    puts.append(StoredItem(FINDINGS, f"{app.facility}.{code}", state.as_dict()))
            failure_texts.extend(f"{app.facility}: {f.message}" for f in result.findings if f.code == "CHECK_FAILED")
        configured = {app.facility for app in self.config.apps}
        for facility, by_code in previous.items():  # an app removed from the configuration: forget it, silently
            if facility not in configured:
                deletes.extend(f"{facility}.{code}" for code in by_code)
        for facility, by_code in snoozes.items():  # forget snoozes that have ended
            deletes_snooze = [code for code, s in by_code.items() if s.until <= now]
            for code in deletes_snooze:
                await self.store.delete(SNOOZES, f"{facility}.{code}")
        alerts.extend(await self._failures(failure_texts, now))
        await self._forget_old_events(now)
        return await self._dispatch(alerts, now, puts, [(FINDINGS, key) for key in deletes])

    async def rotation_events(self, events: Sequence[Any], now: datetime) -> DeliveryReport:
        """Alerts from rotation.RotationEvent objects; the same event at most once per repeat interval."""
        alerts: list[Alert] = []
        puts: list[StoredItem] = []
        for event in events:
            key = event_key(event)
            said = await self.store.get(EVENTS, key)
            last = datetime.fromisoformat(said.data["at"]) if said else None
            # Said within the repeat interval: the same event re-emitted (a retried or resumed
            # run). Later, the same text is news (a failure that persists, or the next
            # rotation's "started", which carries no keyId yet).
            if said is not None and not repeat_due(last, now, self.config.alerts):
                log.info("alert: rotation %s for %s already said at %s", event.kind, event.facility, said.data["at"])
                continue
            alerts.append(rotation_alert(event, now, self.config.alerts))
            puts.append(StoredItem(EVENTS, key, {"at": now.isoformat(), "kind": event.kind, "facility": event.facility}))
        return await self._dispatch(alerts, now, puts, [])

    async def monitor_failures(self, messages: Sequence[str], now: datetime) -> DeliveryReport:
        """The monitor's own failures (ids and reasons only), to the operations route."""
        return await self._dispatch(await self._failures(messages, now), now, [], [])

    async def _failures(self, messages: Sequence[str], now: datetime) -> list[Alert]:
        """One operations alert for a run's failures (a tenant that cannot be read fails
        every app in it: that is one alert, not hundreds), repeated at most once per
        repeat interval while the same failures persist."""
        if not messages:
            return []
        distinct = sorted(set(messages))
        key = failure_key("\n".join(distinct))
        said = await self.store.get(EVENTS, key)
        if said is not None and not repeat_due(datetime.fromisoformat(said.data["at"]), now, self.config.alerts):
            log.info("alert: the same %d failure(s) were reported at %s", len(distinct), said.data["at"])
            return []
        shown = distinct[:MAX_FAILURE_LINES]
        more = f"\n... and {len(distinct) - len(shown)} more (see the monitor's log)" if len(distinct) > len(shown) else ""
        await self.store.put([StoredItem(EVENTS, key, {"at": now.isoformat(), "kind": "monitor-failure"})])
        return [failure_alert("\n".join(shown) + more, now, self.config.alerts, count=len(distinct))]

    async def _forget_old_events(self, now: datetime) -> None:
        for item in await self.store.list(EVENTS):
            if datetime.fromisoformat(item.data["at"]) < now - EVENT_MEMORY:
                await self.store.delete(EVENTS, item.key)

    # ---------------------------------------------------------------- snoozes

    async def snooze(self, facility: str, code: str, until: datetime, by: str, reason: str = "") -> Snooze:
        if self.config.app(facility) is None:
            raise MonitorError(f"no app for facility {facility!r}")
        if code not in CODES:
            raise UnknownCode(f"unknown finding code {code!r} (see docs/checks.md)")
        snooze = Snooze(facility, code, until, by, reason)
        await self.store.put([StoredItem(SNOOZES, f"{facility}.{code}", snooze.as_dict())])
        log.info("alert: %s snoozed %s for %s until %s", by, code, facility, until.isoformat())
        return snooze

    async def snoozes(self, now: datetime) -> list[Snooze]:
        found = [Snooze.from_dict(item.data) for item in await self.store.list(SNOOZES)]
        return sorted((s for s in found if s.until > now), key=lambda s: (s.facility, s.code))

    # ---------------------------------------------------------------- delivery

    async def _dispatch(self, alerts: Sequence[Alert], now: datetime, puts: list[StoredItem], deletes: list[tuple[str, str]]) -> DeliveryReport:
        report = DeliveryReport()
        policy = self.config.alerts
        at_once: list[tuple[Alert, str, tuple[str, ...]]] = []
        for alert in alerts:
            routes = routed(alert, self.config)
            if not routes:
                report.unrouted.append(alert)
                log.warning("alert (no channel configured): %s", alert.title)
                continue
            for sent, channel, recipients in routes:  # sent: the alert as said on that channel (its owners or not)
                if immediate(sent, policy):
                    at_once.append((sent, channel, recipients))
                else:
                    item = {"alert": sent.as_dict(), "channel": channel, "recipients": list(recipients)}
                    puts.append(StoredItem(DIGEST, Notice(channel, (sent,), recipients).id, item))
        new = _bundled(at_once)
        # 2. and 3.: the outbox first, then the state; a crash in between repeats, never loses.
        await self.store.put(_outbox_items(new, now))
        if puts:
            await self.store.put(puts)
        for partition, key in deletes:
            await self.store.delete(partition, key)
        if policy.digest:  # the day of the last digest is read only when there are digests
            meta = await self.store.get(META, "digest")
            if digest_due(meta.data.get("day") if meta else None, now, policy):
                await self._queue_digest(now)
        await self._deliver(now, report)
        return report

    async def _queue_digest(self, now: datetime) -> None:
        pending = await self.store.list(DIGEST)
        items = [(Alert.from_dict(i.data["alert"]), i.data["channel"], tuple(i.data["recipients"])) for i in pending]
        notices = compose_digest(items)
        await self.store.put(_outbox_items(notices, now) + [StoredItem(META, "digest", {"day": now.strftime("%Y-%m-%d")})])
        for item in pending:
            await self.store.delete(DIGEST, item.key)

    async def _deliver(self, now: datetime, report: DeliveryReport) -> None:
        queued = sorted(await self.store.list(OUTBOX), key=lambda i: i.data.get("order", i.data["queued"]))
        down: dict[str, str] = {}
        for item in queued:
            notice = Notice.from_dict(item.data["notice"])
            queued_at = datetime.fromisoformat(item.data["queued"])
            channel = self.channels.get(notice.channel)
            if channel is None:
                report.dropped.append((notice, "the channel is no longer configured"))
                log.error("alert dropped: channel %s is no longer configured: %s", notice.channel, notice.subject)
                await self.store.delete(OUTBOX, item.key)
                continue
            if notice.channel in down:  # down for this run already: do not hammer it
                report.undelivered.append((notice, down[notice.channel]))
                continue
            # Every run (timer, queue workers on several instances, the CLI) reads the one
            # outbox: a notice goes out only from the run that claims it, so it is said once.
            taken = await self.store.claim(OUTBOX, item.key, clock_now(), clock_now() + OUTBOX_CLAIM)
            if taken is None:
                log.info("alert taken by another run: %s", notice.subject)
                continue
            try:
                await channel.send(notice)
            except ChannelError as exc:
                why = str(exc)
                if now - queued_at >= OUTBOX_MAX_AGE:
                    report.dropped.append((notice, f"undelivered for {OUTBOX_MAX_AGE.days} days: {why}"))
                    log.error("alert dropped after %s days: %s: %s", OUTBOX_MAX_AGE.days, notice.subject, why)
                    await self.store.delete(OUTBOX, item.key)
                else:
                    report.undelivered.append((notice, why))
                    log.warning("alert not delivered (kept for the next run): %s: %s", notice.subject, why)
                    kept = {k: v for k, v in taken.data.items() if k != "claimedUntil"}  # released for the next run
                    await self.store.put([StoredItem(OUTBOX, item.key, {**kept, "attempts": kept.get("attempts", 0) + 1, "lastError": why})])
                down[notice.channel] = why
                continue
            report.sent.append(notice)
            log.info("alert sent to %s: %s", notice.channel, notice.subject)
            await self.store.delete(OUTBOX, item.key)
        await self._channel_health(down, now, report)

    async def _channel_health(self, down: dict[str, str], now: datetime, report: DeliveryReport) -> None:
        """Report each channel that went down, once per outage, through the operations route's other channels."""
        states = {i.key: i for i in await self.store.list(META) if i.key.startswith("down.")}
        for key in states:
            name = key[len("down.") :]
            if name not in down and any(n.channel == name for n in report.sent):
                await self.store.delete(META, key)
                log.info("alert channel %s delivers again", name)
        fresh = {name: why for name, why in down.items() if f"down.{name}" not in states}
        for name, why in fresh.items():
            await self.store.put([StoredItem(META, f"down.{name}", {"since": now.isoformat(), "error": why})])
            alert = failure_alert(
                f"Alert channel {name} is not delivering: {why}. Its alerts are kept and retried by every run for {OUTBOX_MAX_AGE.days} days.",
                now,
                self.config.alerts,
                kind=CHANNEL_DOWN,
            )
            for target, _ in route(alert, self.config):
                if target in down or target not in self.channels:
                    continue
                notice = Notice(target, (alert,))
                try:
                    await self.channels[target].send(notice)
                except ChannelError as exc:
                    await self.store.put(_outbox_items([notice], now))
                    report.undelivered.append((notice, str(exc)))
                    continue
                report.sent.append(notice)
                log.info("alert sent to %s: %s", target, notice.subject)
            log.error("alert channel %s is down: %s", name, why)


def _bundled(routed: list[tuple[Alert, str, tuple[str, ...]]]) -> list[Notice]:
    """One notice per alert, except where a run has more than BURST for one channel and
    recipient list (a first run over hundreds of apps, a tenant-wide change): those go as
    digest parts of 20, so a channel is not flooded (Teams allows about 100 a hour)."""
    sizes = Counter((channel, recipients, alert.owners_of) for alert, channel, recipients in routed)
    single = [r for r in routed if sizes[(r[1], r[2], r[0].owners_of)] <= BURST]
    bulk = [r for r in routed if sizes[(r[1], r[2], r[0].owners_of)] > BURST]
    return compose(single) + compose_digest(bulk)


def _outbox_items(notices: Sequence[Notice], now: datetime) -> list[StoredItem]:
    # "order" keeps a run's notices in the order they were decided (the store lists by key).
    return [
        StoredItem(OUTBOX, n.id, {"notice": n.as_dict(), "queued": now.isoformat(), "order": f"{now.isoformat()}.{i:06d}", "attempts": 0})
        for i, n in enumerate(notices)
    ]


def _by_facility(items: Sequence[StoredItem], parse: Any) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for item in items:
        value = parse(item.data)
        grouped.setdefault(value.facility, {})[value.code] = value
    return grouped
