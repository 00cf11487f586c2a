"""Odoo sync: round trips and time per queue sync as the day grows, and caller name latency.

1. One poll (the queue and the contacts changed since; what the phone does every poll and after
   every call) against the Odoo double
   on loopback, with 10, 100 and 1,000 call activities, with and without the `voip` module.
   Baseline, same run, same server: the naive way, one `read` per activity for its record and
   one per partner (what a client that follows each activity's links does).
2. From an incoming call to the caller's name on screen, through the daemon: a caller in the
   cached contacts (the baseline: no Odoo round trip) next to one Odoo has to find.
3. Contacts at steady state (nothing changed in Odoo), per poll, with 10, 1,000 and 10,000
   partners: ours (the write_date delta every poll, the full refresh every 60th) next to the
   baseline (the full refresh every 10th poll, as before); round trips and bytes (request and
   answer bodies), with and without `voip`.

    .venv/bin/python bench/odoo.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.config import OdooConfig, Secret
from firmware.daemon import Daemon
from firmware.events import IncomingCall, RefreshQueue, RegistrationChanged
from firmware.odoo.client import OdooClient
from firmware.odoo.sync import OdooSync
from firmware.phone import Phone, Settings
from tests.odoo_double import ALICE, DATABASE, KEYS, OdooDouble


def config(url: str) -> OdooConfig:
    return OdooConfig(url=url, database=DATABASE, login="alice@example.com",
                      api_key=Secret(KEYS[ALICE]), timeout_seconds=10)


def wait(check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.001)


def ours(count: int, voip: bool, runs: int) -> tuple[int, list[float]]:
    double = OdooDouble(voip=voip).start()
    double.many_activities(count)
    sync = OdooSync(config(double.url), Path(tempfile.mkdtemp()), "BE",
                    today=lambda: double.today)
    sync.start(lambda e: None)
    wait(lambda: sync.status[0] == "online")
    times, trips = [], 0
    for _ in range(runs):
        poll, before = sync._next_poll, double.round_trips
        start = time.perf_counter()
        sync.execute(RefreshQueue())
        wait(lambda: sync._next_poll != poll)  # noqa: B023  (the whole poll: queue, contacts)
        times.append(time.perf_counter() - start)
        trips = double.round_trips - before
    sync.stop()
    double.stop()
    return trips, times


def naive(count: int, runs: int) -> tuple[int, list[float]]:
    double = OdooDouble(voip=False).start()
    double.many_activities(count)
    client = OdooClient(double.url, DATABASE, "alice@example.com", KEYS[ALICE])
    client.authenticate()
    times, trips = [], 0
    for _ in range(runs):
        before = double.round_trips
        start = time.perf_counter()
        acts = client.call("mail.activity", "search_read",
                           [["activity_type_id.category", "=", "phonecall"],
                            ["user_id", "=", ALICE]], fields=["res_model", "res_id"])
        for a in acts:
            fields = ["phone", "mobile"] if a["res_model"] == "res.partner" else ["partner_id"]
            [rec] = client.call(a["res_model"], "search_read", [["id", "=", a["res_id"]]],
                                fields=fields)
            if rec.get("partner_id"):
                client.call("res.partner", "search_read", [["id", "=", rec["partner_id"][0]]],
                            fields=["phone", "mobile"])
        times.append(time.perf_counter() - start)
        trips = double.round_trips - before
    double.stop()
    return trips, times


def name_latency(known: bool, runs: int) -> list[float]:
    double = OdooDouble().start()
    sync = OdooSync(config(double.url), Path(tempfile.mkdtemp()), "BE",
                    today=lambda: double.today)
    daemon = Daemon(Phone(Settings(extension="101", region="BE", ring_timeout_seconds=3600)),
                    [sync])
    daemon.start()
    daemon.post(RegistrationChanged("registered"))
    wait(lambda: daemon.published.snapshot.state.directory)
    times = []
    # Zoë is in the contacts the phone holds; +49 30 ... is nobody's until the double learns it.
    number = "+32470123456" if known else "+4930901820"
    if not known:
        double.tables["res.partner"][77] = {
            "id": 77, "name": "Jonas Weber", "phone": "030 901820", "mobile": False,
            "email": False, "country_code": "DE", "display_name": "Jonas Weber"}
    from firmware.events import CallEnded
    for i in range(runs):
        call_id = f"in-{i}"
        start = time.perf_counter()
        daemon.post(IncomingCall(call_id, number, None))
        wait(lambda: (c := daemon.published.snapshot.state.call) is not None
             and c.id == call_id and bool(c.name))  # noqa: B023
        times.append(time.perf_counter() - start)
        daemon.post(CallEnded(call_id, "cancelled"))
        wait(lambda: daemon.published.snapshot.state.call is None)
    daemon.stop()
    double.stop()
    return times


def contacts_per_poll(count: int, voip: bool) -> tuple[float, float, float, float]:
    """(ours trips, ours bytes, baseline trips, baseline bytes) per poll, on average."""
    from firmware.odoo import sync as sync_module

    double = OdooDouble(voip=voip).start()
    double.many_partners(count)
    sync = OdooSync(config(double.url), Path(tempfile.mkdtemp()), "BE",
                    today=lambda: double.today)
    sync._connect()  # the sync thread is not started: each step is measured alone

    def cost(step: object) -> tuple[int, int]:
        trips, size = double.round_trips, double.bytes
        step()  # type: ignore[operator]
        return double.round_trips - trips, double.bytes - size

    full = cost(sync._sync_contacts)
    delta = cost(sync._contacts_changed)
    sync.stop()
    double.stop()
    ours_every, before_every = sync_module.CONTACTS_FULL_EVERY, 10
    ours = [(full[i] + delta[i] * (ours_every - 1)) / ours_every for i in (0, 1)]
    before = [full[i] / before_every for i in (0, 1)]
    return ours[0], ours[1], before[0], before[1]


def ms(times: list[float]) -> str:
    values = sorted(t * 1000 for t in times)
    return f"{statistics.median(values):.1f} / {values[-1]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| activities | ours, voip: trips, ms (median / max) | ours, community: trips, ms | "
          "baseline, a read per link: trips, ms |")
    print("|---|---|---|---|")
    for count in (10, 100, 1000):
        v_trips, v_times = ours(count, True, args.runs)
        c_trips, c_times = ours(count, False, args.runs)
        n_trips, n_times = naive(count, min(args.runs, 2))
        print(f"| {count} | {v_trips}, {ms(v_times)} | {c_trips}, {ms(c_times)} | "
              f"{n_trips}, {ms(n_times)} |")
    print()
    print("| incoming call to the caller's name in the snapshot | ms (median / max) |")
    print("|---|---|")
    print(f"| baseline: caller in the cached contacts | {ms(name_latency(True, 20))} |")
    print(f"| ours: caller only Odoo knows (res.partner search) | "
          f"{ms(name_latency(False, 20))} |")
    print()
    print("contacts per poll at steady state (average over the refresh cycle)\n")
    print("| partners | edition | ours: trips, KiB | baseline (full every 10th poll): trips, KiB |")
    print("|---|---|---|---|")
    for count in (10, 1000, 10000):
        for voip in (True, False):
            o_trips, o_bytes, b_trips, b_bytes = contacts_per_poll(count, voip)
            print(f"| {count} | {'voip' if voip else 'community'} | {o_trips:.2f}, "
                  f"{o_bytes / 1024:.1f} | {b_trips:.2f}, {b_bytes / 1024:.1f} |")


if __name__ == "__main__":
    main()
