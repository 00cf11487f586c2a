"""Odoo on the desk: today's call queue, contacts, caller names and the call log.

Owns: the sync thread (all Odoo I/O happens there, with timeouts, never on the phone's loop),
what to ask Odoo and how to read its answers (ODOO.md), delivering the outbox in order with
backoff, and the facts it reports to the Phone (`OdooStatusChanged`, `QueueUpdated`,
`ContactsUpdated`, `CallerIdentified`, `OutboxChanged`, `HistoryLoaded`). Never touches: the
phone's state; `execute` (on the loop) only commits to the local store and wakes the thread.

Exactly once: a write is committed to the outbox before it is sent and deleted in the same
transaction that records Odoo's answer. Replays after a crash are harmless for every op except
creating a `voip.call`: that one is marked "sending" before it goes out, and a "sending" create
found later (a timeout, `kill -9`) first looks for the call Odoo may already have made (same
user, number and direction, created since the op was stored, not yet known to the phone).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware import numbers
from firmware.config import OdooConfig
from firmware.events import (
    Action,
    ActivityDoneElsewhere,
    CallerIdentified,
    CallRecord,
    Contact,
    ContactsUpdated,
    HistoryLoaded,
    LogCall,
    LookupCaller,
    MarkDone,
    OdooStatusChanged,
    OutboxChanged,
    Post,
    QueueEntry,
    QueueUpdated,
    RefreshQueue,
    RemoveFromQueue,
)
from firmware.odoo.client import (
    OdooClient,
    OdooDenied,
    OdooDown,
    OdooError,
    OdooMissing,
    OdooNoDatabase,
    OdooRights,
)
from firmware.odoo.notes import call_note, local_time
from firmware.odoo.store import Op, Store

log = logging.getLogger("odoo")

# LogCall stage -> the voip.call method the widget calls for it
STAGE_METHODS = {
    "answered": "start_call",
    "ended": "end_call",
    "transferred": "end_call",
    "missed": "miss_call",
    "rejected": "reject_call",
    "aborted": "abort_call",
    "failed": "abort_call",
}
FINAL_STAGES = ("ended", "transferred", "missed", "rejected", "aborted", "failed")
NOTE: dict[str, Any] = {"message_type": "comment", "subtype_xmlid": "mail.mt_note"}  # not a mail
# Contacts: what changed since the last poll every poll (write_date), everything again now and
# then (a partner deleted outright leaves no write_date behind).
CONTACTS_FULL_EVERY = 30  # contact polls between full refreshes (1 h at the default 60 s)
SAME_SECOND_MAX = 50  # partners of one write_date second asked for again every poll, at most
CONTACTS_PAGE = 500
PARK_SECONDS = 3600.0  # a write Odoo refuses for good is retried hourly (rights may be fixed)
LATE_SECONDS = 30.0  # a call-log step delivered later than this gets its true times written
LOOKUP_TIMEOUT = 3.0  # a caller's name is only worth having while it rings


def call_uid(record: CallRecord) -> str:
    """A call's identity across restarts (the Phone's key alone restarts at 1)."""
    return f"{int(record.started * 1000)}-{record.key}"


def _utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def record_to_json(record: CallRecord) -> dict[str, Any]:
    return {"key": record.key, "direction": record.direction, "number": record.number,
            "name": record.name, "outcome": record.outcome, "started": record.started,
            "seconds": record.seconds, "activity_id": record.activity_id,
            "partner_id": record.partner_id, "transferred_to": record.transferred_to}


def record_from_json(doc: dict[str, Any]) -> CallRecord:
    return CallRecord(key=int(doc["key"]), direction=doc["direction"], number=doc["number"],
                      name=doc.get("name"), outcome=doc["outcome"], started=doc["started"],
                      seconds=int(doc.get("seconds", 0)), activity_id=doc.get("activity_id"),
                      partner_id=doc.get("partner_id"), transferred_to=doc.get("transferred_to"))


def entry_to_json(e: QueueEntry) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "number": e.number, "summary": e.summary,
            "model": e.model, "res_id": e.res_id, "due": e.due, "overdue": e.overdue,
            "partner_id": e.partner_id, "title": e.title}


def contact_to_json(c: Contact) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "numbers": list(c.numbers), "partner_id": c.partner_id}


def _id(value: Any) -> int | None:
    """A many2one as Odoo sends it: `[id, "name"]`, `id`, `{"id": ...}` or `false`."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get("id")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value \
        else None


def _national(e164: str) -> list[str]:
    """The number as dialled inside its own country ("0142278186" for "+33142278186"): how
    people store numbers of their own country, and what phone_mobile_search compares."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return []
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return ["".join(c for c in national if c.isdigit())]


def _any(leaves: list[list[Any]]) -> list[Any]:
    """An Odoo domain that matches any of the leaves (prefix "|" operators)."""
    return ["|"] * (len(leaves) - 1) + leaves


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class OdooSync:
    """The Odoo adapter. `today` gives the desk's local date (what "today" means here)."""

    name = "odoo"
    handles: tuple[type[Action], ...] = (LogCall, MarkDone, RemoveFromQueue, RefreshQueue,
                                         LookupCaller)

    def __init__(
        self,
        config: OdooConfig,
        state_dir: Path,
        region: str | None = None,
        *,
        backoff_max: float = 120.0,
        today: Callable[[], dt.date] = dt.date.today,
        start_delay: float = 0.0,
    ) -> None:
        self.config = config
        self.region = region
        self._country: dict[int, str] = {}  # partner id -> ISO country ("" = none known)
        self.store = Store(state_dir / "odoo.sqlite")
        self.client = OdooClient(config.url, config.database, config.login,
                                 config.api_key.reveal(), timeout=config.timeout_seconds)
        self.backoff_max = backoff_max
        self.today = today
        # Learnt at each login, kept for the next start (an outbox filled while Odoo is
        # unreachable already takes this server's form).
        stored_voip = self.store.get("voip", None)
        self.voip: bool | None = stored_voip if isinstance(stored_voip, bool) else None
        self.tz: str = str(self.store.get("tz", "") or "")
        self.version = ""
        self.status: tuple[str, str] = ("", "")
        self.syncs = 0
        self._post: Post = lambda e: None
        self._cond = threading.Condition()
        self._stopped = False
        self._refresh = True
        self._lookups: list[LookupCaller] = []
        self._retry_at = time.monotonic() + start_delay  # the first login, after a power-on
        self._backoff = 0.0
        self._next_poll = 0.0
        self._polls = 0
        self._contact_polls = 0
        self._details: dict[int, dict[str, Any]] = {}  # activity id -> summary, due date
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ adapter (loop thread)

    def start(self, post: Post) -> None:
        self._post = post
        cached = self.store.get("queue", [])
        pending = self.store.pending_activity_ids()
        post(QueueUpdated(tuple(QueueEntry(**e) for e in cached if e["id"] not in pending)))
        post(ContactsUpdated(tuple(Contact(c["id"], c["name"], tuple(c["numbers"]),
                                           c.get("partner_id"))
                                   for c in self.store.get("contacts", []))))
        self._close_cut_calls()
        history = tuple(record_from_json(r) for r in self.store.history())
        if history:
            post(HistoryLoaded(history))
        post(OutboxChanged(self.store.depth()))
        self._set_status("connecting", f"Odoo: connecting to {self.config.url}")
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="odoo-sync", daemon=True)
        self._thread.start()

    def execute(self, action: Action) -> None:
        if isinstance(action, LogCall):
            self._log_call(action)
        elif isinstance(action, (MarkDone, RemoveFromQueue)):
            if isinstance(action, MarkDone):
                # Where the feedback goes should the activity be gone by the time it arrives.
                model, res_id = self._queue_record(action.activity_id) or ("", 0)
                self.store.add("activity.done", {"activity_id": action.activity_id,
                                                 "feedback": action.feedback,
                                                 "model": model, "res_id": res_id})
            else:
                self.store.add("activity.remove", {"activity_id": action.activity_id})
            # The queue on the desk changes now; Odoo hears of it when it can.
            cached = [e for e in self.store.get("queue", []) if e["id"] != action.activity_id]
            self.store.put("queue", cached)
            self._post(QueueUpdated(tuple(QueueEntry(**e) for e in cached)))
            self._post(OutboxChanged(self.store.depth()))
        elif isinstance(action, RefreshQueue):
            with self._cond:
                self._refresh = True
                self._retry_at = 0.0  # a person is waiting: try now, not at the next backoff
        elif isinstance(action, LookupCaller):
            with self._cond:
                self._lookups.append(action)
        with self._cond:
            self._cond.notify()

    def _close_cut_calls(self) -> None:
        """Calls a power cut or crash left open (their last logged step was "started" or
        "answered") are ended now, in Recent and in Odoo, so no call stays "ongoing" forever."""
        for doc in self.store.history():
            if doc.get("stage") not in ("started", "answered"):
                continue  # ended (or from before stages were kept)
            record = record_from_json(doc)
            stage = {"answered": "ended", "ringing": "missed"}.get(record.outcome, "aborted")
            log.info("closing call %s to %s, cut by a restart", call_uid(record), record.number)
            outcome = "answered" if stage == "ended" else stage
            self._log_call(LogCall(stage, dataclasses.replace(record, outcome=outcome)),
                           post=False)

    def _queue_record(self, activity_id: int | None) -> tuple[str, int] | None:
        """The record (lead, task, ticket, contact) a queue entry is about."""
        for e in self.store.get("queue", []):
            if e["id"] == activity_id and e.get("model") and e.get("res_id"):
                return str(e["model"]), int(e["res_id"])
        return None

    def _log_call(self, action: LogCall, post: bool = True) -> None:
        record = action.record
        uid = call_uid(record)
        earlier = self.store.recalled(uid) or {}
        target = self._queue_record(record.activity_id) or earlier.get("target") or \
            (("res.partner", record.partner_id) if record.partner_id else None)
        # The stage tells a finished call from one still going (both may say "answered").
        self.store.remember_call(uid, {**record_to_json(record), "stage": action.stage,
                                       "target": target})
        if self.voip is False:
            # Community: no voip.call. A finished call becomes a note in the chatter of the
            # record it belongs to; the outbox holds nothing this server cannot take.
            if action.stage in FINAL_STAGES and target:
                self.store.add("call.note", {"model": target[0], "res_id": target[1],
                                             "record": record_to_json(record),
                                             "stage": action.stage}, uid)
            if post:
                self._post(OutboxChanged(self.store.depth()))
            return
        if not self.store.has_call(uid):
            vals: dict[str, Any] = {
                "phone_number": record.number,
                "direction": "incoming" if record.direction == "in" else "outgoing",
                "state": "calling",
            }
            if record.partner_id:
                vals["partner_id"] = record.partner_id
            self.store.add("call.create", vals, uid)
        method = STAGE_METHODS.get(action.stage)
        if method is not None:
            args: dict[str, Any] = {"method": method, "at": _utc(time.time())}
            if method == "end_call" and record.name:
                args["activity_name"] = f"Call with {record.name}"
            self.store.add("call.step", args, uid)
        if post:
            self._post(OutboxChanged(self.store.depth()))

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            # A request in flight ends by its own timeout; the phone does not wait for it
            # (every write is already in the store and goes out at the next start).
            self._thread.join(timeout=1.0)
            self._thread = None
        self.client.close()
        self.store.close()

    # ------------------------------------------------------------------ the sync thread

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    break
            try:
                self._cycle()
            except Exception:
                log.exception("Odoo sync failed")
                self._fail_later()
            with self._cond:
                if self._stopped:
                    break
                if not self._lookups and not (self._refresh and time.monotonic() >=
                                              self._retry_at):
                    self._cond.wait(timeout=max(0.05, self._next_wake() - time.monotonic()))
        self.store.close()

    def _next_wake(self) -> float:
        wake = max(self._next_poll, self._retry_at)
        for op in self.store.pending():
            wake = min(wake, max(op.next_at, self._retry_at))
        return wake

    def _cycle(self) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            return
        try:
            if self.client.uid is None:
                self._connect()
            self._do_lookups()
            if self._refresh or now >= self._next_poll:
                with self._cond:
                    asked = self._refresh
                    self._refresh = False
                # One question a poll, in turn: today's queue, then the contacts changed since
                # (all of them now and then). A refresh (the login, the queue opened on the
                # desk, a call ended) asks for the queue at once, its details afresh: an idle
                # office costs Odoo one request per phone per poll.
                if asked or self._polls % 2 == 0:
                    self._sync_queue(fresh=asked)
                if (not asked and self._polls % 2 == 1) or self._polls == 0:
                    if self._contact_polls % CONTACTS_FULL_EVERY == 0:
                        self._sync_contacts()
                    else:
                        self._contacts_changed()
                    self._contact_polls += 1
                self._polls += 1
                # Never sooner than poll_seconds; phones of one office do not poll in step.
                self._next_poll = time.monotonic() + self.config.poll_seconds * \
                    random.uniform(1.0, 1.2)
            if self._deliver():
                self._sync_queue()  # what was done or removed is gone from Odoo now
            self._backoff = 0.0
            self._set_status("online", "")
        except OdooDown as exc:
            self._set_status("offline", f"Odoo offline: {exc}")
            self._fail_later()
        except OdooNoDatabase as exc:
            self.client.uid = None
            self._set_status("denied", f"Odoo: database {self.config.database!r} not found on "
                                       f"{self.config.url} ({exc})")
            self._fail_later(slow=True)
        except OdooDenied:
            self.client.uid = None
            self._set_status("denied", f"Odoo refused login {self.config.login!r}: wrong login "
                                       f"or API key, or the key was revoked")
            self._fail_later(slow=True)
        except OdooRights as exc:
            self._set_status("denied", f"Odoo: missing rights: {exc}")
            self._fail_later(slow=True)

    def _fail_later(self, slow: bool = False) -> None:
        self._backoff = min(self.backoff_max, max(1.0, self._backoff * 2))
        delay = self.backoff_max if slow else self._backoff
        self._retry_at = time.monotonic() + delay * random.uniform(0.8, 1.2)
        with self._cond:
            self._refresh = True

    def _set_status(self, status: str, reason: str) -> None:
        if (status, reason) == self.status:
            return
        previous = self.status[0]
        self.status = (status, reason)
        if status in ("offline", "denied"):
            log.warning("%s", reason)
        elif status == "online" and previous:
            log.info("Odoo online: %s, %s, voip %s", self.config.url, self.version or "?",
                     "installed" if self.voip else "not installed")
        self._post(OdooStatusChanged(status, reason))

    def _connect(self) -> None:
        info = self.client.version()
        self.version = str(info.get("server_version", ""))
        self.client.authenticate()
        log.info("Odoo %s at %s: logged in as %s (uid %s)", self.version, self.config.url,
                 self.config.login, self.client.uid)
        self._learn_server()

    def _learn_server(self) -> None:
        """Whether this Odoo has the `voip` module and the user's time zone, asked in a way
        that leaves no error in Odoo's log (ODOO.md): a method that may not exist is never
        called to find out."""
        try:
            rows = self.client.call("ir.module.module", "search_read",
                                    [["name", "=", "voip"]], fields=["name", "state"])
            voip = any(r.get("state") == "installed" for r in rows)
        except OdooRights:
            voip = False  # a server that hides its modules: the Community way is safe
            log.info("Odoo does not say which modules it has: calls are written as notes")
        if voip != self.voip:
            log.info("Odoo %s the voip module: %s", "has" if voip else "has no",
                     "calls go to its call log" if voip else
                     "the queue comes from mail.activity, calls are written as notes")
        self.voip = voip
        self.store.put("voip", voip)
        rows = self.client.call("res.users", "search_read", [["id", "=", self.client.uid]],
                                fields=["tz"])
        self.tz = _text(rows[0].get("tz")) if rows else ""
        self.store.put("tz", self.tz)

    # ------------------------------------------------------------------ today's queue

    def _sync_queue(self, fresh: bool = False) -> None:
        today = self.today()
        entries = self._queue_voip(today, fresh) if self.voip else \
            self._queue_community(today)
        pending = self.store.pending_activity_ids()
        entries = [e for e in entries if e.id not in pending and e.number]
        countries = self._countries({e.partner_id for e in entries
                                     if e.partner_id and not e.number.startswith("+")})
        entries = [dataclasses.replace(e, number=numbers.in_country(
            e.number, countries.get(e.partner_id or 0))) for e in entries]
        self.store.put("queue", [entry_to_json(e) for e in entries])
        self._post(QueueUpdated(tuple(entries)))
        self.syncs += 1

    def _queue_voip(self, today: dt.date, fresh: bool = False) -> list[QueueEntry]:
        result = self.client.call("mail.activity", "get_today_call_activities")
        partners: dict[int, dict[str, Any]] = {}
        if isinstance(result, dict):  # Odoo 18's "Store" shape
            for p in result.get("res.partner") or result.get("Persona") or []:
                if isinstance(p, dict) and _id(p.get("id")):
                    partners[int(p["id"])] = p
            rows = result.get("Activity") or result.get("mail.activity") or []
        else:
            rows = result or []
        rows = [r for r in rows if isinstance(r, dict) and _id(r.get("id"))]
        # The summary and due date (not in the widget's answer) of activities not seen
        # before; of all of them on a refresh a person asked for.
        ids = [int(r["id"]) for r in rows]
        unknown = ids if fresh else [i for i in ids if i not in self._details]
        if unknown:
            for d in self.client.call("mail.activity", "search_read", [["id", "in", unknown]],
                                      fields=["summary", "date_deadline"]):
                self._details[int(d["id"])] = d
        self._details = {i: d for i, d in self._details.items() if i in ids}
        details = self._details
        out = []
        for r in rows:
            aid = int(r["id"])
            partner = r.get("partner")
            pid = _id(partner) or _id(r.get("partner_id"))
            # Odoo 18 refers to the partner by id and sends it once, beside the activities.
            partner = {**partners.get(pid or 0, {}),
                       **(partner if isinstance(partner, dict) else {})}
            number = _text(r.get("phone")) or _text(r.get("mobile")) or \
                _text(partner.get("phone")) or _text(partner.get("mobile"))
            d = details.get(aid, {})
            due = _text(d.get("date_deadline")) or _text(r.get("date_deadline"))
            out.append(self._entry(aid, _text(partner.get("name")), _text(r.get("res_name")),
                                   number, _text(d.get("summary")), _text(r.get("res_model")),
                                   _id(r.get("res_id")) or 0, due, pid, today,
                                   r.get("state")))
        return [e for e in out if e is not None]

    def _queue_community(self, today: dt.date) -> list[QueueEntry]:
        uid = self.client.uid
        rows = self.client.call(
            "mail.activity", "search_read",
            [["activity_type_id.category", "=", "phonecall"], ["user_id", "=", uid],
             ["date_deadline", "<=", today.isoformat()]],
            fields=["res_model", "res_id", "res_name", "summary", "date_deadline", "state"])
        by_model: dict[str, set[int]] = {}
        for r in rows:
            by_model.setdefault(r["res_model"], set()).add(int(r["res_id"]))
        # One read per model and one for all partners: round trips do not grow with the queue.
        records: dict[tuple[str, int], dict[str, Any]] = {}
        for model, ids in sorted(by_model.items()):
            fields = ["phone", "mobile", "name"] if model == "res.partner" else \
                ["phone", "mobile", "partner_id"] if model == "crm.lead" else ["partner_id"]
            try:
                found = self.client.call(model, "search_read", [["id", "in", sorted(ids)]],
                                         fields=fields)
            except OdooRights:
                log.info("no access to %s records: their activities are not shown", model)
                continue
            except OdooError as exc:  # a model without partner_id: nothing to dial
                log.info("cannot read numbers of %s: %s", model, exc)
                continue
            for rec in found:
                records[(model, int(rec["id"]))] = rec
        partner_ids = {p for rec in records.values() if (p := _id(rec.get("partner_id")))}
        partners: dict[int, dict[str, Any]] = {}
        if partner_ids:
            for p in self.client.call("res.partner", "search_read",
                                      [["id", "in", sorted(partner_ids)]],
                                      fields=["name", "phone", "mobile"]):
                partners[int(p["id"])] = p
        out = []
        for r in rows:
            model, res_id = r["res_model"], int(r["res_id"])
            rec = records.get((model, res_id), {})
            pid = res_id if model == "res.partner" else _id(rec.get("partner_id"))
            partner = rec if model == "res.partner" else partners.get(pid or 0, {})
            number = _text(rec.get("phone")) or _text(rec.get("mobile")) or \
                _text(partner.get("phone")) or _text(partner.get("mobile"))
            out.append(self._entry(int(r["id"]), _text(partner.get("name")),
                                   _text(r.get("res_name")), number, _text(r.get("summary")),
                                   model, res_id, _text(r.get("date_deadline")), pid, today,
                                   r.get("state")))
        return [e for e in out if e is not None]

    def _entry(self, aid: int, partner_name: str, res_name: str, number: str, summary: str,
               model: str, res_id: int, due: str, partner_id: int | None, today: dt.date,
               state: Any) -> QueueEntry | None:
        due = due[:10]
        if due and due > today.isoformat():
            return None  # a future call: not today's (the server's "today" may differ)
        overdue = due < today.isoformat() if due else state == "overdue"
        name = partner_name or res_name or number
        # The lead's, task's or ticket's own title tells what the call is about.
        title = res_name if res_name and res_name != name else ""
        return QueueEntry(aid, name, number, summary, model, res_id, due, overdue, partner_id,
                          title)

    # ------------------------------------------------------------------ contacts and callers

    def _contacts_changed(self) -> None:
        """New, changed and archived partners since the last look: one small search_read."""
        since = self.store.get("contacts_since", "")
        if not since:
            self._sync_contacts()
            return
        # Odoo's write_date has whole seconds: ">=" asks again for the partners of the newest
        # second seen, so one written (or archived) in that same second after the last look
        # is not missed; after an import that wrote hundreds in one second, ">" (what it would
        # miss waits for the full refresh).
        op = ">=" if self.store.get("contacts_at_since", 0) <= SAME_SECOND_MAX else ">"
        rows = self.client.call("res.partner", "search_read",
                                [["write_date", op, since], ["active", "in", [True, False]]],
                                fields=["name", "phone", "mobile", "active", "country_code",
                                        "write_date"])
        if not rows:
            return
        cached = {int(c["id"]): c for c in self.store.get("contacts", [])}
        before = dict(cached)
        for p in rows:
            pid = int(p["id"])
            self._country[pid] = _text(p.get("country_code"))
            nums = tuple(numbers.in_country(n, self._country[pid] or None)
                         for n in (_text(p.get("phone")), _text(p.get("mobile"))) if n)
            if p.get("active") is False or not nums or not _text(p.get("name")):
                cached.pop(pid, None)  # archived, or nothing to dial any more
            else:
                cached[pid] = contact_to_json(Contact(pid, _text(p["name"]), nums, pid))
        newest = max(_text(p.get("write_date")) for p in rows)
        self.store.put("contacts_since", newest)
        self.store.put("contacts_at_since",
                       sum(1 for p in rows if _text(p.get("write_date")) == newest))
        if cached != before:
            contacts = [Contact(c["id"], c["name"], tuple(c["numbers"]), c.get("partner_id"))
                        for c in sorted(cached.values(), key=lambda c: c["id"])]
            self.store.put("contacts", [contact_to_json(c) for c in contacts])
            self._post(ContactsUpdated(tuple(contacts)))

    def _sync_contacts(self) -> None:
        # The newest write_date Odoo has now: the next polls ask only for what changed after
        # it (Odoo's own clock, so the phone's being wrong loses nothing).
        newest = self.client.call("res.partner", "search_read", [["active", "in", [True, False]]],
                                  fields=["write_date"], limit=1, order="write_date desc")
        contacts: list[Contact] = []
        if self.voip:
            offset = 0
            while True:
                page = self.client.call("res.partner", "get_contacts", offset, CONTACTS_PAGE, "")
                for p in page or []:
                    nums = tuple(n for n in (_text(p.get("landlineNumber")),
                                             _text(p.get("mobileNumber"))) if n)
                    name = _text(p.get("name")) or _text(p.get("displayName"))
                    if nums and name:
                        contacts.append(Contact(int(p["id"]), name, nums, int(p["id"])))
                if not page or len(page) < CONTACTS_PAGE:
                    break
                offset += CONTACTS_PAGE
        else:
            for p in self.client.call("res.partner", "search_read",
                                      ["|", ["phone", "!=", False], ["mobile", "!=", False]],
                                      fields=["name", "phone", "mobile"]):
                nums = tuple(n for n in (_text(p.get("phone")), _text(p.get("mobile"))) if n)
                if nums and _text(p.get("name")):
                    contacts.append(Contact(int(p["id"]), _text(p["name"]), nums, int(p["id"])))
        countries = self._countries({c.partner_id for c in contacts if c.partner_id and
                                     not all(n.startswith("+") for n in c.numbers)}, fresh=True)
        contacts = [dataclasses.replace(c, numbers=tuple(
            numbers.in_country(n, countries.get(c.partner_id or 0)) for n in c.numbers))
            for c in contacts]
        self.store.put("contacts", [contact_to_json(c) for c in contacts])
        if newest:
            since = _text(newest[0].get("write_date"))
            self.store.put("contacts_since", since)
            self.store.put("contacts_at_since", len(self.client.call(
                "res.partner", "search_read",
                [["write_date", "=", since], ["active", "in", [True, False]]], fields=["id"],
                limit=SAME_SECOND_MAX + 1)))
        self._post(ContactsUpdated(tuple(contacts)))

    def _countries(self, partner_ids: set[int], fresh: bool = False) -> dict[int, str]:
        """The country of each partner whose number has no `+`: "020 123 4567" of a Dutch
        partner is +31 20 123 4567, not a number of the phone's region. Kept between syncs
        (a queue sync asks only for partners it has not seen; the contacts' refresh asks
        again for all). A server that cannot say leaves the numbers as they are."""
        wanted = partner_ids if fresh else partner_ids - self._country.keys()
        if wanted:
            try:
                rows = self.client.call("res.partner", "search_read",
                                        [["id", "in", sorted(wanted)]], fields=["country_code"])
            except OdooError as exc:
                log.info("partners' countries unknown (%s): their numbers read as of %s", exc,
                         self.region or "the phone's region")
                return {}
            self._country.update(dict.fromkeys(wanted, ""))
            self._country.update({int(r["id"]): _text(r.get("country_code")) for r in rows})
        return {pid: code for pid in partner_ids if (code := self._country.get(pid))}

    def _do_lookups(self) -> None:
        while True:
            with self._cond:
                if not self._lookups:
                    return
                lookup = self._lookups.pop(0)
            found = self.lookup(lookup.number)
            if found is not None:
                self._post(CallerIdentified(lookup.call_id, found[1], found[0]))

    def lookup(self, number: str) -> tuple[int, str] | None:
        """A caller's partner: first the cached contacts by E.164 (a number stored as
        "0470 12 34 56" matches "+32470123456"), then Odoo's own search fields."""
        key = numbers.normalize(number, self.region)
        if key is None:
            return None
        for c in self.store.get("contacts", []):
            if any(numbers.normalize(n, self.region) == key for n in c["numbers"]):
                return int(c["partner_id"] or c["id"]), c["name"]
        forms = list(dict.fromkeys([key, *numbers.digit_forms(number, self.region),
                                    *_national(key)]))
        by_number = [["phone_mobile_search", "=", form] for form in forms]
        try:
            found = self.client.call("res.partner", "search_read",
                                     _any([["phone_sanitized", "=", key], *by_number]),
                                     fields=["name"], limit=1, timeout=LOOKUP_TIMEOUT)
        except OdooDown:
            raise
        except OdooError as exc:  # phone_sanitized is absent without phone_validation
            log.info("caller lookup by phone_sanitized failed (%s); by number only", exc)
            found = self.client.call("res.partner", "search_read", _any(by_number),
                                     fields=["name"], limit=1, timeout=LOOKUP_TIMEOUT)
        if found:
            return int(found[0]["id"]), _text(found[0].get("name"))
        return None

    # ------------------------------------------------------------------ the outbox

    def _deliver(self) -> int:
        """Send what is due, oldest first; returns how many queue writes went through."""
        queue_writes = 0
        blocked_calls: set[str] = set()
        for op in self.store.pending():
            now = time.time()
            if op.next_at > now:
                if op.state == "parked" and op.call_uid:
                    blocked_calls.add(op.call_uid)
                if op.state == "parked":
                    continue
                break  # in order: a write waiting for its retry holds the ones behind it
            if op.call_uid in blocked_calls:
                continue
            if op.op.startswith("call.") and self.voip is None:
                break  # first learn whether Odoo has voip (the next queue sync tells)
            try:
                self._apply(op)
            except OdooMissing:
                # Gone already: this write was applied before (a replay after a crash).
                self.store.done(op.id)
            except (OdooDown, OdooDenied, OdooNoDatabase):
                self.store.mark(op.id, op.state, next_at=0.0, error="", attempt=True)
                self._post(OutboxChanged(self.store.depth()))
                raise
            except OdooError as exc:
                log.error("Odoo refused %s (%s): kept in the outbox, retried in an hour",
                          op.op, exc)
                self.store.mark(op.id, "parked", next_at=time.time() + PARK_SECONDS,
                                error=str(exc), attempt=True)
                if op.call_uid:
                    blocked_calls.add(op.call_uid)
                continue
            if op.op.startswith("activity."):
                queue_writes += 1
            self._post(OutboxChanged(self.store.depth()))
        return queue_writes

    def _apply(self, op: Op) -> None:
        args = op.args
        if op.op == "activity.done":
            try:
                self.client.call("mail.activity", "action_feedback", [args["activity_id"]],
                                 feedback=args["feedback"])
            except OdooMissing:
                self._done_elsewhere(op)
            self.store.done(op.id)
        elif op.op == "activity.remove":
            self.client.call("mail.activity", "unlink", [args["activity_id"]])
            self.store.done(op.id)
        elif op.op == "call.note":
            self._post_call_note(op, args["model"], int(args["res_id"]),
                                 record_from_json(args["record"]), args["stage"])
        elif op.op == "call.create":
            if not self.voip:
                self.store.done(op.id)  # no voip.call in this Odoo (stored before it was known)
                return
            assert op.call_uid is not None
            remote = self._already_created(op) if op.state == "sending" else None
            if remote is None:
                self.store.mark(op.id, "sending", attempt=True)
                made = self.client.call("voip.call", "create_and_format", **args)
                if isinstance(made, list):
                    made = made[0]
                remote = int(made["id"])
            self.store.done(op.id, op.call_uid, remote)
        elif op.op == "call.step":
            if not self.voip:
                # Stored before this Odoo was known to be Community: the end becomes a note.
                doc = self.store.recalled(op.call_uid or "") or {}
                target = doc.get("target")
                if doc.get("stage") in FINAL_STAGES and target and \
                        args["method"] not in ("start_call",):
                    self._post_call_note(op, target[0], int(target[1]), record_from_json(doc),
                                         doc["stage"])
                else:
                    self.store.done(op.id)
                return
            assert op.call_uid is not None
            remote = self.store.remote_id(op.call_uid)
            if remote is None:
                raise OdooError("the call was never created in Odoo")
            kwargs = {"activity_name": args["activity_name"]} if "activity_name" in args else {}
            self.client.call("voip.call", args["method"], [remote], **kwargs)
            if time.time() - op.created > LATE_SECONDS:
                # Odoo stamps the time it hears of a step; this one is late, so write when it
                # really happened.
                field = {"start_call": "start_date"}.get(args["method"], "end_date")
                self.client.call("voip.call", "write", [remote], {field: args["at"]})
            self.store.done(op.id)
        else:
            log.error("unknown outbox op %r dropped", op.op)
            self.store.done(op.id)

    def _post_call_note(self, op: Op, model: str, res_id: int, record: CallRecord,
                        stage: str) -> None:
        """One note per call, exactly once: marked "sending" before it goes; a "sending" note
        found later (a timeout, a crash) is first looked for in the chatter."""
        if op.state == "sending" and self._note_posted(model, res_id, record):
            self.store.done(op.id)
            return
        self.store.mark(op.id, "sending", attempt=True)
        self.client.call(model, "message_post", [res_id], body=call_note(record, stage, self.tz),
                         **NOTE)
        self.store.done(op.id)

    def _note_posted(self, model: str, res_id: int, record: CallRecord) -> bool:
        when = local_time(record.started, self.tz)
        found = self.client.call("mail.message", "search_read",
                                 [["model", "=", model], ["res_id", "=", res_id],
                                  ["body", "ilike", record.number],
                                  ["body", "ilike", f"{when:%d %b %Y %H:%M}"]],
                                 fields=["id"], limit=1)
        return bool(found)

    def _done_elsewhere(self, op: Op) -> None:
        """The activity is gone: someone marked it done in Odoo meanwhile. The person's
        feedback is not lost: it goes on the record as a note."""
        args = op.args
        feedback = str(args.get("feedback") or "").strip()
        added = False
        if feedback and args.get("model") and args.get("res_id"):
            self.client.call(args["model"], "message_post", [int(args["res_id"])],
                             body=f"Call feedback (the activity was already done): {feedback}",
                             **NOTE)
            added = True
        log.info("activity %s was already done in Odoo%s", args["activity_id"],
                 ": the feedback is a note on the record" if added else "")
        self._post(ActivityDoneElsewhere(int(args["activity_id"]), added))

    def _already_created(self, op: Op) -> int | None:
        """The voip.call a create whose answer was lost may have made (see the module doc)."""
        since = _utc(op.created - 120)  # the server's clock may be a little behind ours
        found = self.client.call(
            "voip.call", "search_read",
            [["user_id", "=", self.client.uid], ["phone_number", "=", op.args["phone_number"]],
             ["direction", "=", op.args["direction"]], ["create_date", ">=", since]],
            fields=["id"], order="id desc")
        known = self.store.known_remote_ids()
        for row in found:
            if int(row["id"]) not in known:
                log.info("outbox: voip.call %s was already made for %s; not made twice",
                         row["id"], op.call_uid)
                return int(row["id"])
        return None
