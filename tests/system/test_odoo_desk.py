"""`deskphone simulate --headless` with the Odoo double: the queue on screen, and a removal made
while Odoo is down that survives `kill -9` and reaches Odoo exactly once."""

from __future__ import annotations

from pathlib import Path

from tests.desk import lab_sip, odoo_section, start, state
from tests.helpers import http, wait_for
from tests.odoo_double import ALICE, KEYS, OdooDouble


def test_queue_on_screen_and_a_removal_survives_kill_9(tmp_path: Path) -> None:
    double = OdooDouble(today=__import__("datetime").date.today()).start()
    desk = start(tmp_path, odoo=odoo_section(tmp_path, double.url, timeout_seconds=2))
    base = desk.base
    try:
        wait_for(lambda: state(base)["odoo"] == "online" and state(base)["queue"],
                 timeout=20, what="the queue from Odoo")
        doc = state(base)
        assert "4 calls to make" in doc["screen"]
        assert doc["queue"][0]["overdue"]  # overdue first, as on the widget
        http("POST", f"{base}/keys", {"keys": "B"})
        wait_for(lambda: state(base)["phone"] == "queue", what="the queue open")
        first = state(base)["queue"][0]
        assert any(first["name"][:10] in line for line in state(base)["screen"])
        double.down = True
        http("POST", f"{base}/keys", {"keys": "#D"})
        wait_for(lambda: state(base)["outbox"] == 1, what="the removal waiting")
        http("POST", f"{base}/keys", {"keys": "CC"})
        wait_for(lambda: "Odoo down, 1 to send" in state(base)["screen"],
                 what="the outbox depth on the idle screen")
        assert first["id"] not in [e["id"] for e in state(base)["queue"]]
        desk.kill()
        assert double.writes == []
        double.down = False
        desk.restart()
        wait_for(lambda: double.writes, timeout=20, what="the removal to reach Odoo")
        wait_for(lambda: state(base)["outbox"] == 0, timeout=20, what="an empty outbox")
        assert double.writes == [("mail.activity", "unlink", [[first["id"]]], {})]
        assert len(state(base)["queue"]) == 3
        assert KEYS[ALICE] not in desk.log.read_text()
    finally:
        desk.stop()
        double.stop()


def test_call_from_the_queue_then_done_reaches_odoo(tmp_path: Path, kamailio, peers) -> None:
    import datetime as dt

    zoe = peers(kamailio, "+32470123456", answermode="auto")  # the lead's number, E.164
    double = OdooDouble(today=dt.date.today()).start()
    desk = start(tmp_path, sip=lab_sip(kamailio.port),
                 odoo=odoo_section(tmp_path, double.url, timeout_seconds=2))
    base = desk.base
    try:
        wait_for(lambda: state(base)["registration"] == "registered" and state(base)["queue"],
                 timeout=20, what="registered, with the queue")
        http("POST", f"{base}/keys", {"keys": "B"})
        ids = [e["id"] for e in state(base)["queue"]]
        http("POST", f"{base}/keys", {"keys": "B" * ids.index(101)})
        wait_for(lambda: state(base).get("selected") == ids.index(101), what="Zoë selected")
        http("POST", f"{base}/keys", {"keys": "D"})
        zoe.wait_event("CALL_ESTABLISHED")
        wait_for(lambda: (c := state(base)["call"]) and c["state"] == "connected",
                 what="talking to Zoë")
        assert state(base)["call"]["name"] == "Zoë Dupont"
        http("POST", f"{base}/hook", {"off_hook": True})
        http("POST", f"{base}/hook", {"off_hook": False})  # hang up
        doc = wait_for(lambda: (d := state(base))["prompt"] and d, what="Mark call done?")
        assert doc["prompt"]["activity_id"] == 101
        http("POST", f"{base}/keys", {"keys": "D"})
        wait_for(lambda: any(w[1] == "action_feedback" for w in double.writes), timeout=20,
                 what="action_feedback in Odoo")
        feedback = next(w for w in double.writes if w[1] == "action_feedback")
        assert feedback[2] == [[101]] and "Zoë Dupont" in feedback[3]["feedback"]
        wait_for(lambda: [c["state"] for c in double.voip_calls()] == ["terminated"],
                 timeout=20, what="the voip.call lifecycle")
        assert [w[1] for w in double.writes if w[0] == "voip.call"] == [
            "create_and_format", "start_call", "end_call"]
        assert double.voip_calls()[0]["phone_number"] == "+32470123456"
        wait_for(lambda: 101 not in [e["id"] for e in state(base)["queue"]],
                 what="the entry gone from the queue")
    finally:
        desk.stop()
        double.stop()


def test_community_desk_writes_notes_keeps_feedback_and_finds_new_contacts(
        tmp_path: Path, kamailio, peers) -> None:
    import datetime as dt
    import zoneinfo

    zoe = peers(kamailio, "+32470123456", answermode="auto")  # the lead's number
    brasserie = peers(kamailio, "+3222222222")  # a partner of Alice's Odoo
    double = OdooDouble(voip=False, today=dt.date.today()).start()
    desk = start(tmp_path, sip=lab_sip(kamailio.port),
                 odoo=odoo_section(tmp_path, double.url, timeout_seconds=2, poll_seconds=10))
    base = desk.base
    brussels = zoneinfo.ZoneInfo("Europe/Brussels")
    try:
        wait_for(lambda: state(base)["registration"] == "registered" and state(base)["queue"],
                 timeout=20, what="registered, with the queue")
        assert double.faults == []  # nothing at start that writes a traceback in Odoo's log
        # A call from the queue; meanwhile the activity is marked done in the browser.
        http("POST", f"{base}/keys", {"keys": "B"})
        ids = [e["id"] for e in state(base)["queue"]]
        http("POST", f"{base}/keys", {"keys": "B" * ids.index(101)})
        wait_for(lambda: state(base).get("selected") == ids.index(101), what="Zoë selected")
        http("POST", f"{base}/keys", {"keys": "D"})
        zoe.wait_event("CALL_ESTABLISHED")
        wait_for(lambda: (c := state(base)["call"]) and c["state"] == "connected",
                 what="talking to Zoë")
        assert "Office chairs for Zoë" in state(base)["screen"]  # the lead's title
        http("POST", f"{base}/hook", {"off_hook": True})
        http("POST", f"{base}/hook", {"off_hook": False})
        wait_for(lambda: state(base)["prompt"], what="Mark call done?")
        double.mark_done_in_browser(101)
        http("POST", f"{base}/keys", {"keys": "D"})
        wait_for(lambda: state(base)["message"] == "Already done in Odoo: note added",
                 timeout=20, what="the person told")
        wait_for(lambda: len(double.notes("crm.lead", 31)) == 2, timeout=20,
                 what="the call's note and the feedback on the lead")
        call_note, feedback = (n["body"] for n in double.notes("crm.lead", 31))
        assert call_note.startswith("<p>Outgoing call to Zoë Dupont (+32470123456)")
        assert "Zoë Dupont" in feedback and "already done" in feedback
        # Odoo down: a known caller's call waits as one note, and arrives once.
        double.down = True
        wait_for(lambda: state(base)["odoo"] == "offline", timeout=30, what="Odoo offline")
        before = dt.datetime.now(brussels)
        brasserie.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
        wait_for(lambda: (c := state(base)["call"]) and c["name"] == "Brasserie De Koning",
                 what="the caller named from the cached contacts")
        http("POST", f"{base}/hook", {"off_hook": True})
        brasserie.wait_event("CALL_ESTABLISHED")
        http("POST", f"{base}/hook", {"off_hook": False})
        wait_for(lambda: "Odoo down, 1 to send" in state(base)["screen"], timeout=20,
                 what="one write waiting, honestly counted")
        after = dt.datetime.now(brussels)
        double.down = False
        wait_for(lambda: state(base)["outbox"] == 0, timeout=60, what="the outbox sent")
        [note] = double.notes("res.partner", 52)
        assert note["body"].startswith("<p>Incoming call from Brasserie De Koning (+3222222222)")
        # Its time is Alice's Odoo zone's (Europe/Brussels), not the phone's UTC clock.
        assert any(f"{t:%H:%M} {t:%Z}" in note["body"] for t in (before, after))
        assert len(double.notes()) == 3
        # A contact created in Odoo is found by name on the keypad within two polls.
        double.add_partner("Nadia Haddad", "02 555 12 34")
        http("POST", f"{base}/keys", {"keys": "62342"})
        wait_for(lambda: any("Nadia Haddad" in line for line in state(base)["screen"]),
                 timeout=25, what="Nadia found by T9")
        assert double.voip_calls() == [] and double.faults == []
    finally:
        desk.stop()
        double.stop()
