"""The Odoo adapter against the JSON-RPC double over HTTP on 127.0.0.1."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from firmware.config import OdooConfig, Secret
from firmware.events import (
    CallerIdentified,
    CallRecord,
    ContactsUpdated,
    Event,
    HistoryLoaded,
    LogCall,
    LookupCaller,
    MarkDone,
    OdooStatusChanged,
    OutboxChanged,
    QueueUpdated,
    RefreshQueue,
    RemoveFromQueue,
)
from firmware.odoo.client import OdooClient, OdooDenied, OdooDown, OdooNoDatabase
from firmware.odoo.sync import OdooSync
from tests.odoo_double import ALICE, DATABASE, KEYS, OdooDouble

E = TypeVar("E", bound=Event)
TODAY_IDS = {101, 102, 103, 107}  # lead, overdue ticket, task, overdue activity on a contact


class Phone:
    """Collects what the adapter posts, as the daemon's queue would."""

    def __init__(self) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []

    def post(self, event: Event) -> None:
        self.events.put(event)

    def wait(self, kind: type[E], check: Callable[[E], bool] = lambda e: True,
             timeout: float = 10.0) -> E:
        for event in self.seen:
            if isinstance(event, kind) and check(event):
                self.seen.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.__name__} matching within {timeout} s; saw "
                                     f"{[type(e).__name__ for e in self.seen][-20:]}")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(event, kind) and check(event):
                return event
            self.seen.append(event)

    def status(self, status: str, timeout: float = 10.0) -> OdooStatusChanged:
        return self.wait(OdooStatusChanged, lambda e: e.status == status, timeout)


def config(url: str, key: str = KEYS[ALICE], database: str = DATABASE,
           timeout: float = 2.0) -> OdooConfig:
    return OdooConfig(url=url, database=database, login="alice@example.com",
                      api_key=Secret(key), poll_seconds=60, timeout_seconds=timeout)


@pytest.fixture
def double() -> Iterator[OdooDouble]:
    d = OdooDouble().start()
    yield d
    d.stop()


Make = Callable[..., tuple[OdooSync, Phone]]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    started: list[OdooSync] = []

    def make(double: OdooDouble, state: Path = tmp_path, **kw: Any) -> tuple[OdooSync, Phone]:
        cfg = config(double.url, **kw)
        sync = OdooSync(cfg, state, "BE", backoff_max=0.5, today=lambda: double.today)
        phone = Phone()
        sync.start(phone.post)
        started.append(sync)
        return sync, phone

    yield make
    for sync in started:
        sync.stop()


def drained(sync: OdooSync) -> None:
    """Every write the test queued has been acknowledged by Odoo."""
    from tests.helpers import wait_for

    wait_for(lambda: sync.store.depth() == 0, timeout=10, what="an empty outbox")


def timed_poll(sync: OdooSync) -> None:
    """The next timed poll, now: the idle rhythm asks for the queue and the contacts in turn."""
    from tests.helpers import wait_for

    polls = sync._polls
    with sync._cond:
        sync._next_poll = 0.0
        sync._cond.notify()
    wait_for(lambda: sync._polls > polls, timeout=10, what="a timed poll")


def record(outcome: str = "answered", direction: str = "out", number: str = "+32470123456",
           **kw: Any) -> CallRecord:
    return CallRecord(key=kw.pop("key", 1), direction=direction, number=number,
                      name=kw.pop("name", "Zoë Dupont"), outcome=outcome,
                      started=kw.pop("started", 1795867200.0), seconds=kw.pop("seconds", 0),
                      **kw)


# --------------------------------------------------------------------------- the queue


@pytest.mark.parametrize("flavour", ["voip", "community", "odoo18-store"])
def test_todays_queue_holds_only_my_due_calls_with_numbers(double: OdooDouble, make: Make,
                                                           flavour: str) -> None:
    double.voip = flavour != "community"
    double.store_shape = flavour == "odoo18-store"
    _, phone = make(double)
    update = phone.wait(QueueUpdated, lambda e: bool(e.entries))
    phone.status("online")
    by_id = {e.id: e for e in update.entries}
    assert set(by_id) == TODAY_IDS  # no future, no Bob's, no email, no number-less
    lead = by_id[101]
    # Numbers without + are read in their partner's country (here BE) and kept as E.164.
    assert (lead.name, lead.number, lead.summary) == ("Zoë Dupont", "+32470123456",
                                                     "Follow up on the quote")
    assert (lead.model, lead.res_id, lead.partner_id, lead.overdue) == ("crm.lead", 31, 51,
                                                                        False)
    assert lead.title == "Office chairs for Zoë"  # the lead's own name (res_name)
    # voip is found in ir.module.module: nothing was called that could leave an error with a
    # traceback in Odoo's log (a missing method, a missing model).
    assert double.faults == []
    ticket = by_id[102]  # the ticket has no number of its own: its partner's
    assert (ticket.name, ticket.number, ticket.overdue, ticket.due) == (
        "Ingrid Jansen", "+31201234567", True, "2026-11-26")  # her country: NL
    assert by_id[107].name == "Łukasz Nowak" and by_id[107].number == "+48 601 234 567"
    task = by_id[103]
    assert (task.summary, task.title) == ("", "Install the phones")  # what the task is about


def test_contacts_are_cached_and_served_while_odoo_is_down(double: OdooDouble, make: Make,
                                                           tmp_path: Path) -> None:
    sync, phone = make(double)
    contacts = phone.wait(ContactsUpdated, lambda e: bool(e.contacts)).contacts
    names = {c.name for c in contacts}
    assert {"Zoë Dupont", "Łukasz Nowak", "Marc Leroy"} <= names and "Acme Corp" not in names
    phone.wait(QueueUpdated, lambda e: bool(e.entries))
    sync.stop()
    double.down = True
    _, phone = make(double)
    # From the local store at once, before Odoo answers (it will not).
    assert len(phone.wait(QueueUpdated).entries) == len(TODAY_IDS)
    assert {c.name for c in phone.wait(ContactsUpdated).contacts} == names
    offline = phone.status("offline")
    assert "HTTP 502" in offline.reason


@pytest.mark.parametrize("voip", [True, False])
def test_a_new_contact_is_found_at_the_next_poll_and_an_archived_one_goes(
        double: OdooDouble, make: Make, voip: bool) -> None:
    double.voip = voip
    sync, phone = make(double)
    phone.wait(ContactsUpdated, lambda e: bool(e.contacts))
    phone.status("online")
    pid = double.add_partner("Nadia Haddad", "02 555 12 34")
    timed_poll(sync)  # the queue
    timed_poll(sync)  # the contacts
    update = phone.wait(ContactsUpdated, lambda e: any(c.id == pid for c in e.contacts))
    [nadia] = [c for c in update.contacts if c.id == pid]
    assert nadia.numbers == ("+3225551234",) and nadia.name == "Nadia Haddad"
    calls = len(double.calls)
    phone.seen.clear()  # only what comes after the archiving
    double.archive_partner(pid)
    timed_poll(sync)
    timed_poll(sync)
    phone.wait(ContactsUpdated, lambda e: all(c.id != pid for c in e.contacts))
    # The poll asked for what changed, not for every partner again (the queue's own reads
    # name their partners by id).
    asked = [c[2][0][0][0] for c in double.calls[calls:] if c[0] == "res.partner"]
    assert asked.count("write_date") == 1 and set(asked) <= {"write_date", "id"}


def test_round_trips_per_sync_do_not_grow_with_the_queue(make: Make) -> None:
    from tests.helpers import wait_for

    trips: dict[tuple[bool, int], list[int]] = {}
    for voip in (True, False):
        for count in (10, 1000):
            double = OdooDouble(voip=voip).start()
            try:
                double.many_activities(count)
                sync, phone = make(double)
                phone.status("online")
                polls, before = sync._polls, double.round_trips
                sync.execute(RefreshQueue())  # the queue opened on the desk
                wait_for(lambda: sync._polls > polls, timeout=20,  # noqa: B023
                         what="a refresh")
                seen = [double.round_trips - before]
                for _ in range(4):  # the idle rhythm: the queue and the contacts in turn
                    before = double.round_trips
                    timed_poll(sync)
                    seen.append(double.round_trips - before)
                trips[(voip, count)] = seen
                while not phone.events.empty():
                    phone.seen.append(phone.events.get())
                latest = [e for e in phone.seen if isinstance(e, QueueUpdated)]
                assert latest and len(latest[-1].entries) >= count
                sync.stop()
            finally:
                double.stop()
    # A refresh: the queue and its details; then one request a poll (the details of
    # activities already known are not asked again).
    assert trips[(True, 10)] == trips[(True, 1000)] == [2, 1, 1, 1, 1]
    assert trips[(False, 10)] == trips[(False, 1000)]
    assert trips[(False, 10)][1:].count(1) >= 2  # the contacts changed since: one each


# --------------------------------------------------------------------------- queue actions


def test_mark_done_and_remove_reach_odoo_and_leave_the_queue_at_once(double: OdooDouble,
                                                                    make: Make) -> None:
    sync, phone = make(double)
    phone.wait(QueueUpdated, lambda e: bool(e.entries))
    phone.status("online")
    sync.execute(MarkDone(101, "Called by Alice Martin on 28/11 at 10:00, 3 min 12 s"))
    assert 101 not in {e.id for e in phone.wait(QueueUpdated).entries}
    sync.execute(RemoveFromQueue(102))
    drained(sync)
    from tests.helpers import wait_for
    wait_for(lambda: len(double.writes) == 2, timeout=10, what="both writes")
    assert double.writes == [
        ("mail.activity", "action_feedback", [[101]],
         {"feedback": "Called by Alice Martin on 28/11 at 10:00, 3 min 12 s"}),
        ("mail.activity", "unlink", [[102]], {}),
    ]
    final = phone.wait(QueueUpdated, lambda e: {x.id for x in e.entries} == {103, 107})
    assert final


# --------------------------------------------------------------------------- the call log


def test_a_call_is_logged_with_the_widgets_lifecycle(double: OdooDouble, make: Make) -> None:
    sync, phone = make(double)
    phone.status("online")
    rec = record(partner_id=51)
    for stage in ("started", "answered", "ended"):
        sync.execute(LogCall(stage, rec))
    drained(sync)
    [call] = double.voip_calls()
    assert call["state"] == "terminated" and call["partner_id"] == 51
    assert (call["phone_number"], call["direction"], call["user_id"]) == (
        "+32470123456", "outgoing", ALICE)
    assert call["activity_name"] == "Call with Zoë Dupont"
    assert [w[1] for w in double.writes] == ["create_and_format", "start_call", "end_call"]


@pytest.mark.parametrize(("stages", "state"), [
    (("started", "missed"), "missed"),
    (("started", "rejected"), "rejected"),
    (("started", "aborted"), "aborted"),
    (("missed",), "missed"),  # a second call refused during a call: never "started"
])
def test_calls_that_never_connect(double: OdooDouble, make: Make, stages: tuple[str, ...],
                                  state: str) -> None:
    sync, phone = make(double)
    phone.status("online")
    for stage in stages:
        sync.execute(LogCall(stage, record(stage, direction="in")))
    drained(sync)
    [call] = double.voip_calls()
    assert call["state"] == state and call["direction"] == "incoming"


def test_odoo_down_for_the_whole_call_logs_it_later_exactly_once(double: OdooDouble,
                                                                  make: Make) -> None:
    sync, phone = make(double)
    phone.status("online")
    double.down = True
    rec = record()
    for stage in ("started", "answered", "ended"):
        sync.execute(LogCall(stage, rec))
    sync.execute(RefreshQueue())
    phone.status("offline")
    phone.wait(OutboxChanged, lambda e: e.depth == 3)  # the create, answered, ended
    assert double.voip_calls() == []
    double.down = False
    sync.execute(RefreshQueue())
    drained(sync)
    [call] = double.voip_calls()
    assert call["state"] == "terminated"
    sync.execute(RefreshQueue())
    phone.wait(QueueUpdated)
    assert len(double.voip_calls()) == 1


def test_a_lost_answer_to_create_does_not_log_the_call_twice(double: OdooDouble,
                                                              make: Make) -> None:
    sync, phone = make(double, timeout=1.0)
    phone.status("online")
    double.delay = 1.5  # Odoo makes the call but the answer comes after the phone gave up
    sync.execute(LogCall("started", record()))
    phone.status("offline")
    double.delay = 0
    sync.execute(LogCall("ended", record()))
    sync.execute(RefreshQueue())
    drained(sync)
    [call] = double.voip_calls()
    assert call["state"] == "terminated"
    assert [w[1] for w in double.writes] == ["create_and_format", "end_call"]


def test_community_writes_each_call_as_a_note_on_its_record(double: OdooDouble, make: Make,
                                                             tmp_path: Path) -> None:
    double.voip = False
    sync, phone = make(double)
    phone.wait(QueueUpdated, lambda e: bool(e.entries))
    phone.status("online")
    # From the queue (the lead "Office chairs for Zoë"): on the lead.
    out = record(seconds=192, activity_id=101, partner_id=51)
    for stage in ("started", "answered", "ended"):
        sync.execute(LogCall(stage, out))
    # A known caller: on the partner. A missed one too. A stranger: nowhere but Recent.
    known = record(key=2, direction="in", number="+3222222222", name="Brasserie De Koning",
                   seconds=42, partner_id=52, started=1795870800.0, transferred_to="102")
    for stage in ("started", "answered", "transferred"):
        sync.execute(LogCall(stage, known))
    missed = record("missed", key=3, direction="in", number="+31201234567",
                    name="Ingrid Jansen", partner_id=55, started=1795874400.0)
    sync.execute(LogCall("started", missed))
    sync.execute(LogCall("missed", missed))
    stranger = record(key=4, direction="in", number="+3225550000", name=None, seconds=5)
    for stage in ("started", "answered", "ended"):
        sync.execute(LogCall(stage, stranger))
    drained(sync)
    bodies = {(n["model"], n["res_id"]): n["body"] for n in double.notes()}
    assert bodies == {
        # 1795867200 is 12:00 UTC: 13:00 in Alice's Odoo zone, Europe/Brussels.
        ("crm.lead", 31): "<p>Outgoing call to Zoë Dupont (+32470123456), 28 Nov 2026 13:00 "
                          "CET. Talked 3 min 12 s. (Desk phone)</p>",
        ("res.partner", 52): "<p>Incoming call from Brasserie De Koning (+3222222222), "
                             "28 Nov 2026 14:00 CET. Talked 42 s, then transferred to 102. "
                             "(Desk phone)</p>",
        ("res.partner", 55): "<p>Missed call from Ingrid Jansen (+31201234567), 28 Nov 2026 "
                             "15:00 CET. Not answered. (Desk phone)</p>",
    }
    assert all(n["subtype_xmlid"] == "mail.mt_note" and n["message_type"] == "comment"
               for n in double.notes())
    assert double.voip_calls() == [] and double.faults == []
    sync.stop()
    _, phone = make(double)
    history = phone.wait(HistoryLoaded).records
    assert len(history) == 4  # Recent keeps every call, the stranger's too


def test_community_outbox_holds_only_what_odoo_will_take(double: OdooDouble,
                                                        make: Make) -> None:
    double.voip = False
    sync, phone = make(double)
    phone.status("online")
    double.down = True
    sync.execute(RefreshQueue())
    phone.status("offline")
    for stage in ("started", "answered", "ended"):
        sync.execute(LogCall(stage, record(seconds=30, partner_id=51)))
    for stage in ("started", "aborted"):
        sync.execute(LogCall(stage, record("aborted", key=2, number="+3225550000",
                                           name=None)))
    # Five steps of two calls; Community takes one note (the stranger's call has none).
    assert phone.wait(OutboxChanged, lambda e: e.depth == 1).depth == 1
    assert sync.store.depth() == 1
    double.down = False
    sync.execute(RefreshQueue())
    drained(sync)
    assert [(n["model"], n["res_id"]) for n in double.notes()] == [("res.partner", 51)]


def test_a_note_whose_answer_was_lost_is_not_posted_twice(double: OdooDouble,
                                                           make: Make) -> None:
    double.voip = False
    sync, phone = make(double, timeout=1.0)
    phone.status("online")
    double.delay = 1.5  # Odoo posts the note but the answer comes after the phone gave up
    sync.execute(LogCall("ended", record(seconds=30, partner_id=51)))
    phone.status("offline")
    double.delay = 0
    sync.execute(RefreshQueue())
    drained(sync)
    assert len(double.notes()) == 1


def test_an_activity_done_in_the_browser_keeps_the_persons_feedback(double: OdooDouble,
                                                                   make: Make) -> None:
    from firmware.events import ActivityDoneElsewhere

    sync, phone = make(double)
    phone.wait(QueueUpdated, lambda e: bool(e.entries))
    phone.status("online")
    double.mark_done_in_browser(101)  # a colleague, or the person in the browser
    sync.execute(MarkDone(101, "Wants the quote by Friday"))
    told = phone.wait(ActivityDoneElsewhere)
    assert (told.activity_id, told.note_added) == (101, True)
    drained(sync)
    [note] = double.notes("crm.lead", 31)
    assert "Wants the quote by Friday" in note["body"]
    assert note["subtype_xmlid"] == "mail.mt_note"


def test_a_write_odoo_refuses_for_good_is_parked_and_does_not_block_others(
        double: OdooDouble, make: Make) -> None:
    sync, phone = make(double)
    phone.status("online")
    sync.execute(LogCall("started", record(number="")))  # ValidationError: number required
    sync.execute(RemoveFromQueue(103))
    from tests.helpers import wait_for
    wait_for(lambda: ("mail.activity", "unlink", [[103]], {}) in double.writes, timeout=10)
    # Odoo has the unlink; the outbox drops it just after (waiting for that, not for a time).
    wait_for(lambda: 103 not in sync.store.pending_activity_ids(), timeout=10,
             what="the sent removal gone from the outbox")
    assert sync.store.depth() == 1  # kept, not lost: retried hourly, shown as outbox depth
    [parked] = sync.store.pending()
    assert parked.state == "parked" and "phone_number is required" in parked.error


# --------------------------------------------------------------------------- caller names


def test_caller_name_from_a_number_stored_differently(double: OdooDouble, make: Make) -> None:
    sync, phone = make(double)
    phone.wait(ContactsUpdated, lambda e: bool(e.contacts))
    sync.execute(LookupCaller("in-1", "+32470123456"))  # stored as "0470 12 34 56"
    found = phone.wait(CallerIdentified)
    assert (found.call_id, found.name, found.partner_id) == ("in-1", "Zoë Dupont", 51)


def test_caller_lookup_falls_back_to_odoos_search(double: OdooDouble, make: Make) -> None:
    sync, phone = make(double)
    phone.status("online")
    sync.store.put("contacts", [])  # not in the phone's cache: ask Odoo
    assert sync.lookup("+33142278186") == (56, "Marc Leroy")  # raw "01 42 27 81 86", no country
    assert sync.lookup("+32470123456") == (51, "Zoë Dupont")  # via phone_sanitized
    assert sync.lookup("+49301234567") is None


# --------------------------------------------------------------------------- what goes wrong


def test_bad_key_wrong_database_and_revoked_key_are_told_apart(double: OdooDouble,
                                                              make: Make) -> None:
    _, phone = make(double, key="wrong-key")
    denied = phone.status("denied")
    assert "wrong login or API key" in denied.reason and "wrong-key" not in denied.reason
    _, phone = make(double, database="prod")
    assert "database 'prod' not found" in phone.status("denied").reason
    sync, phone = make(double)
    phone.status("online")
    double.revoke()
    sync.execute(RemoveFromQueue(101))
    assert "revoked" in phone.status("denied").reason
    assert sync.store.depth() == 1


def test_down_malformed_and_refused_are_offline_not_denied(double: OdooDouble) -> None:
    client = OdooClient(double.url, DATABASE, "alice@example.com", KEYS[ALICE], timeout=1)
    assert client.authenticate() == ALICE
    double.malformed = True
    with pytest.raises(OdooDown, match="not JSON"):
        client.call("res.partner", "search_read", [])
    double.malformed = False
    double.down = True
    with pytest.raises(OdooDown, match="HTTP 502"):
        client.version()
    double.down = False
    double.stop()
    with pytest.raises(OdooDown, match="connection refused"):
        client.version()
    bad = OdooClient(double.url, "nope", "alice@example.com", KEYS[ALICE])
    assert "alice-api-key" not in repr(bad)
    double.start()
    with pytest.raises(OdooNoDatabase):
        bad.authenticate()
    with pytest.raises(OdooDenied):
        OdooClient(double.url, DATABASE, "alice@example.com", "nope").authenticate()


def test_a_slow_odoo_never_holds_up_the_phone(double: OdooDouble, tmp_path: Path) -> None:
    from firmware.daemon import Daemon
    from firmware.events import IncomingCall
    from firmware.phone import Phone as RealPhone
    from firmware.phone import Settings

    double.delay = 3.0
    sync = OdooSync(config(double.url, timeout=5), tmp_path, "BE")
    daemon = Daemon(RealPhone(Settings(extension="101", region="BE")), [sync])
    daemon.start()
    try:
        from firmware.events import RegistrationChanged
        from tests.helpers import wait_for

        daemon.post(RegistrationChanged("registered"))
        daemon.post(IncomingCall("in-9", "+3222222299", None))  # unknown: a lookup goes out
        wait_for(lambda: daemon.published.snapshot.state.mode == "ringing", timeout=1,
                 what="ringing while Odoo is still answering")
        assert daemon.published.snapshot.state.odoo == "connecting"
    finally:
        daemon.stop()


# --------------------------------------------------------------------------- SIP from Odoo


def test_sip_credentials_from_the_users_odoo_record(double: OdooDouble, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from firmware.odoo.provision import sip_credentials

    caplog.set_level("INFO")
    got = sip_credentials(config(double.url), tmp_path)
    assert got is not None and got[0] == "101" and got[1].reveal() == "pw101"
    double.down = True  # the next boot, Odoo is down: the last good pair
    again = sip_credentials(config(double.url), tmp_path)
    assert again is not None and again[1].reveal() == "pw101"
    assert (tmp_path / "odoo.sqlite").stat().st_mode & 0o077 == 0
    double.down = False
    double.voip = False  # Community: res.users has no voip fields
    from tests import odoo_double
    fields = odoo_double.FIELDS["res.users"]
    odoo_double.FIELDS["res.users"] = fields - {"voip_username", "voip_secret"}
    try:
        assert sip_credentials(config(double.url), tmp_path) is None
    finally:
        odoo_double.FIELDS["res.users"] = fields
    assert "is the voip module installed?" in caplog.text
    assert "pw101" not in caplog.text


def test_a_call_cut_by_a_power_loss_is_closed_at_the_next_start(double: OdooDouble, make: Make,
                                                                tmp_path: Path) -> None:
    sync, phone = make(double)
    phone.status("online")
    done = record("answered", started=1795867300.0, key=2)
    for stage in ("started", "answered", "ended"):
        sync.execute(LogCall(stage, done))  # a finished call: left alone
    cut = record("answered", started=1795867400.0, key=3)
    sync.execute(LogCall("started", cut))
    sync.execute(LogCall("answered", cut))  # ... and the power went
    drained(sync)
    sync.stop()
    sync, phone = make(double)
    drained(sync)
    assert sorted(c["state"] for c in double.voip_calls()) == ["terminated", "terminated"]
    assert [w[1] for w in double.writes].count("end_call") == 2
