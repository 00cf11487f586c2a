"""Run inside a private network namespace (tests/system/test_network_loss.py): the phone on the
namespace's own loopback, the registrar on 127.0.0.5, and the "cable" pulled by deleting the
route to 127.0.0.0/8 (only 127.0.0.1 stays local), then put back.

Prints one JSON line: what systemd's STATUS said, and how long after the network came back the
phone was registered again. Everything stays on 127.0.0.0/8 inside the namespace.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.desk import write_config
from tests.lab.fixtures import lab_port
from tests.lab.lab import Kamailio

SERVER = "127.0.0.5"
ROUTE = ["local", "127.0.0.0/8", "dev", "lo", "table", "local"]
OUTAGE = 45.0  # longer than the registration's 30 s, so the phone must notice and recover


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    work = Path(tempfile.mkdtemp(prefix="netloss-"))
    kam = Kamailio(work / "k", port=lab_port(), ip=SERVER).start()
    notify_path = work / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    cfg = write_config(work, sip={"server": SERVER, "port": kam.port,
                                  "domain": f"{SERVER}:{kam.port}", "bind": None,
                                  "register_expires": 30})
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    with (work / "phone.log").open("w") as log:
        phone = subprocess.Popen([sys.executable, "-m", "firmware", "simulate", "--headless",
                                  "--config", str(cfg)], stderr=log, env=env)
    statuses: list[tuple[float, str]] = []

    def until(check: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if statuses and check in statuses[-1][1]:
                return statuses[-1][0]
            notify.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = notify.recv(4096).decode()
            except TimeoutError:
                break
            for line in data.split("\n"):
                if line.startswith("STATUS="):
                    statuses.append((time.monotonic(), line[7:]))
        return statuses[-1][0] if statuses and check in statuses[-1][1] else None

    result: dict[str, object] = {}
    try:
        result["registered_at_start"] = until("SIP registered", 20) is not None
        subprocess.run(["ip", "route", "del", *ROUTE], check=True)  # the cable is out
        down = time.monotonic()
        result["said_no_network"] = until("no network", 20) is not None
        result["said_not_registered"] = until("SIP registering", OUTAGE) is not None
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))
        subprocess.run(["ip", "route", "add", *ROUTE[:4], "proto", "kernel", "scope", "host",
                        "src", "127.0.0.1", *ROUTE[4:]], check=True)  # and back in
        up = time.monotonic()
        again = until("SIP registered", 60)
        result["registered_again_after_s"] = None if again is None else round(again - up, 1)
        result["same_process"] = phone.poll() is None
    finally:
        phone.terminate()
        phone.wait(timeout=10)
        kam.stop()
        result["statuses"] = [s for _, s in statuses][-8:]
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
