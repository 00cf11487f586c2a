"""A fleet on one machine: N headless phones booting at once against the lab's Kamailio and the
Odoo double, as after a power cut in an office of forty desks.

Each phone is `deskphone simulate --headless` with its own extension (2001, 2002 ...) bound to
its own loopback address (127.0.1.1, 127.0.1.2 ...), all logging in to Odoo as the same user.
Measured, from the servers' side:
1. the spread of the first REGISTER of each phone and of the first Odoo login (the stampede a
   power cut's return causes), from process start;
2. idle load per phone-minute after every phone is registered: Odoo round trips (goal: at most
   1), REGISTERs, and keep-alive requests Kamailio sees (OPTIONS; STUN and CRLF keep-alives do
   not reach its script);
3. CPU seconds per minute and resident memory per phone process.
The baseline, same run: what the first minute after boot costs, next to each idle minute.

    .venv/bin/python bench/fleet.py [--phones 50] [--idle 180] [--jitter 20]

Run as root (the time namespaces); `--jitter 0` is the baseline: every phone at once.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.desk import odoo_section, toml
from tests.lab.fixtures import lab_port
from tests.lab.lab import Kamailio
from tests.odoo_double import OdooDouble

TICK = os.sysconf("SC_CLK_TCK")


class CountingOdoo(OdooDouble):
    """The Odoo double, remembering when each request came and what it was."""

    def handle(self, raw: bytes) -> tuple[int, str, bytes]:
        try:
            args = json.loads(raw)["params"]["args"]
            method = args[4] + "." + args[3] if len(args) > 4 else \
                json.loads(raw)["params"]["method"]
        except (ValueError, KeyError, TypeError, IndexError):
            method = "?"
        self.arrivals.append((time.time(), method))
        return super().handle(raw)


def phone_config(work: Path, i: int, kam: Kamailio, odoo: OdooDouble, jitter: float) -> Path:
    user = str(2000 + i)
    folder = work / f"phone{i}"
    folder.mkdir()
    doc = {
        "sip": {"server": "127.0.0.1", "port": kam.port, "domain": f"127.0.0.1:{kam.port}",
                "username": user, "password": f"pw{user}", "bind": f"127.0.1.{i}:5060",
                "mwi": False},
        "phone": {"name": f"Desk {i}", "region": "BE", "state_dir": str(folder),
                  "start_jitter_seconds": jitter},
        "odoo": odoo_section(folder, odoo.url),
    }
    path = folder / "config.toml"
    path.write_text(toml(doc))
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def spread(times: list[float], start: float) -> str:
    if not times:
        return "none"
    rel = sorted(t - start for t in times)
    return (f"first {rel[0]:5.1f} s, median {statistics.median(rel):5.1f} s, last "
            f"{rel[-1]:5.1f} s; {sum(1 for r in rel if r - rel[0] < 1.0)} within 1 s of the "
            f"first")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--idle", type=float, default=180, help="idle seconds measured")
    parser.add_argument("--jitter", type=float, default=20.0,
                        help="[phone] start_jitter_seconds (0: the baseline, all at once)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    kam = Kamailio(work / "kamailio", port=lab_port(), times=True).start()
    odoo = CountingOdoo(today=__import__("datetime").date.today())
    odoo.arrivals = []  # type: ignore[attr-defined]
    odoo.start()
    configs = [phone_config(work, i, kam, odoo, args.jitter)
               for i in range(1, args.phones + 1)]
    # Each phone in a time namespace whose clock says the system was switched on a moment
    # ago (unshare --time --boottime): what a power cut's return looks like to the firmware.
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    power_on = ["unshare", "--time", f"--boottime={-int(uptime) + 5}"]
    procs: list[subprocess.Popen[bytes]] = []
    start = time.time()
    for cfg in configs:
        with (cfg.parent / "deskphone.log").open("w") as err:
            procs.append(subprocess.Popen(
                [*power_on, sys.executable, "-m", "firmware", "simulate", "--headless", "--config",
                 str(cfg)], stdout=subprocess.DEVNULL, stderr=err, cwd=cfg.parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}))
    try:
        # Booted: every phone registered (a 200 to its REGISTER) or 120 s.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = kam.text
            registered = {m for m in re.findall(r"AT [\d.]+ REGISTER from (127\.0\.1\.\d+)",
                                                text)}
            if len(registered) >= args.phones:
                break
            time.sleep(1)
        booted = time.time()
        time.sleep(max(0.0, 60 - (booted - start)))  # the first minute is the boot's
        first_minute_odoo = len(odoo.arrivals)  # type: ignore[attr-defined]
        first_minute_sip = kam.text.count("AT ")
        idle_from, cpu0 = time.time(), {p.pid: cpu_seconds(p.pid) for p in procs}
        odoo0, text0 = len(odoo.arrivals), kam.text  # type: ignore[attr-defined]
        time.sleep(args.idle)
        minutes = (time.time() - idle_from) / 60
        cpu = [(cpu_seconds(p.pid) - cpu0[p.pid]) / minutes for p in procs]
        rss = [rss_kib(p.pid) for p in procs]
        idle_text = kam.text[len(text0):]
        odoo_idle = len(odoo.arrivals) - odoo0  # type: ignore[attr-defined]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        kam_text = kam.text
        kam.stop()
        odoo.stop()
    firsts: dict[str, float] = {}
    for t, method, ip in re.findall(r"AT ([\d.]+) (\w+) from (127\.0\.1\.\d+)", kam_text):
        if method == "REGISTER":
            firsts.setdefault(ip, float(t))
    logins = [t for t, m in odoo.arrivals if m == "authenticate"]  # type: ignore[attr-defined]
    n = args.phones
    per = n * minutes
    registers = len(re.findall(r"AT [\d.]+ REGISTER from 127\.0\.1\.", idle_text))
    options = len(re.findall(r"AT [\d.]+ OPTIONS from 127\.0\.1\.", idle_text))
    print(f"fleet of {n} phones, {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"start_jitter_seconds {args.jitter:g}, idle {minutes:.1f} min measured\n")
    print(f"first REGISTER per phone:  {spread(list(firsts.values()), start)} "
          f"({len(firsts)} phones)")
    print(f"Odoo logins:               {spread(logins, start)} ({len(logins)} logins)")
    print("\nper phone-minute            idle     (baseline: the boot minute)")
    print(f"  Odoo round trips        {odoo_idle / per:6.2f}     {first_minute_odoo / n:6.2f}")
    print(f"  REGISTERs               {registers / per:6.2f}")
    print(f"  OPTIONS keep-alives     {options / per:6.2f}")
    print(f"  all SIP requests        {idle_text.count('AT ') / per:6.2f}     "
          f"{first_minute_sip / n:6.2f}")
    kinds = collections.Counter(m for t, m in odoo.arrivals  # type: ignore[attr-defined]
                                if t >= idle_from)
    print("  Odoo, idle, by method:  " + ", ".join(f"{m} {c / per:.2f}"
                                                  for m, c in kinds.most_common()))
    print(f"\nper phone: CPU {statistics.mean(cpu):.3f} CPU-s/min idle (max {max(cpu):.3f}), "
          f"RSS {statistics.mean(rss) / 1024:.1f} MiB (max {max(rss) / 1024:.1f})")


if __name__ == "__main__":
    main()
