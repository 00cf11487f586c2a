"""Provisioning against a local HTTPS server with a CA of the test's own: the phone's own file
over the default one, a broken file (the last good settings kept, and why), the server down at
boot (the phone comes up on the last good settings), a file with a wrong type, a slow server,
an untrusted certificate, and a fresh card that holds only the provisioning URL.

Each phone is `deskphone simulate --headless` (or `run` for the fresh card) with
`DESKPHONE_MAC` set: the simulated phones share this machine's interfaces."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.desk import Desk, lab_sip, start, toml
from tests.helpers import free_port, wait_for
from tests.lab.lab import Kamailio, private_ca

MAC = "02:00:5e:10:00:42"
OWN = "02005e100042.toml"
SERVER = Path(__file__).resolve().parents[1] / "lab" / "https_files.py"


@dataclass
class Server:
    root: Path
    port: int
    ca: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/phones"

    def put(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def requests(self) -> list[str]:
        log = self.root.parent.parent / "requests.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def https(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`https(trickle=0.0, cert=None)` starts the server; every one is stopped by PID after."""
    work = tmp_path / "https"
    (work / "files" / "phones").mkdir(parents=True)
    ca, cert, key = private_ca(work)
    procs: list[subprocess.Popen[bytes]] = []
    port = free_port()

    def run(trickle: float = 0.0, cert_key: tuple[Path, Path] | None = None) -> Server:
        c, k = cert_key or (cert, key)
        args = [sys.executable, str(SERVER), str(work / "files"), str(c), str(k), str(port)]
        if trickle:
            args += ["--trickle", str(trickle)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        return Server(work / "files" / "phones", port, ca, proc)

    yield run
    for proc in procs:
        proc.kill()
        proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def stop(server: Server) -> None:
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait(timeout=5)


def phone(tmp_path: Path, server: Server, kamailio: Kamailio, **sections: object) -> Desk:
    """A phone registered with the lab's Kamailio (the idle screen shows its name only then)."""
    return start(tmp_path, env={"DESKPHONE_MAC": MAC}, sip=lab_sip(kamailio.port),
                 provisioning={"url": server.url, "ca_file": str(server.ca)}, **sections)


COOKIE = [""]


def status_page(port: int) -> str:
    """The web page's status (loopback: no password), keeping its session cookie."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
        cookie = reply.headers.get("Set-Cookie", "")
        if cookie:
            COOKIE[0] = cookie.split(";", 1)[0]
        return str(reply.read().decode())


def record(tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "provisioning.json"
    return json.loads(path.read_text()) if path.exists() else {}


def screen_says(desk: Desk, text: str, timeout: float = 30) -> None:
    wait_for(lambda: any(text in line for line in desk.state()["screen"]), timeout=timeout,
             what=f"{text!r} on the screen")


def test_the_phones_own_file_wins_over_the_default_and_a_restart_applies_them(
        tmp_path: Path, https, kamailio: Kamailio) -> None:
    server = https()
    server.put("default.toml", '[phone]\nname = "Office phone"\nregion = "FR"\n')
    server.put(OWN, '[phone]\nname = "Reception"\n')
    web = free_port()
    desk = phone(tmp_path, server, kamailio, admin={"listen": f"127.0.0.1:{web}"})
    try:
        screen_says(desk, "Reception")  # the phone's own file, after a restart by itself
        layer = (tmp_path / "provisioned.toml").read_text()
        assert 'region = "FR"' in layer and 'name = "Reception"' in layer
        assert oct((tmp_path / "provisioned.toml").stat().st_mode & 0o777) == "0o600"
        rec = record(tmp_path)
        assert rec["result"] in ("applied", "unchanged")
        assert rec["sources"] == [f"{server.url}/default.toml", f"{server.url}/{OWN}"]
        log = desk.log.read_text()
        assert "provisioning: new settings from" in log and "restarting" in log
        # After the restart the same files are unchanged: no second restart.
        wait_for(lambda: record(tmp_path)["result"] == "unchanged", what="the second fetch")
        assert log.count("provisioning: restarting") == 1
        assert f"GET /phones/{OWN} 200" in server.requests()
        # The status page says where the settings came from, and fetches again on request.
        page = status_page(web)
        assert f"unchanged from {server.url}/default.toml and {server.url}/{OWN}" in page
        assert "provisioned.toml" in page
        asked = len(server.requests())
        form = re.search(r'action="/provision".*?name="csrf" value="([^"]+)"', page)
        assert form is not None
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{web}/provision", data=f"csrf={form.group(1)}".encode(),
            headers={"Cookie": COOKIE[0]}), timeout=5)
        wait_for(lambda: len(server.requests()) >= asked + 2, what="a fetch on request")
    finally:
        desk.stop()


def test_a_broken_or_wrong_file_is_not_applied_and_the_server_down_at_boot_keeps_the_last_good(
        tmp_path: Path, https, kamailio: Kamailio) -> None:
    server = https()
    server.put(OWN, '[phone]\nname = "Reception"\n')
    desk = phone(tmp_path, server, kamailio)
    try:
        screen_says(desk, "Reception")
        wait_for(lambda: record(tmp_path)["result"] == "unchanged", what="the second fetch")
        good = (tmp_path / "provisioned.toml").read_text()

        server.put(OWN, '[phone]\nname = "Broken\n')  # a syntax error
        desk.stop()
        desk.restart().api_up()
        wait_for(lambda: record(tmp_path)["result"] == "failed", what="the broken file refused")
        rec = record(tmp_path)
        assert OWN in str(rec["detail"]) and "line 2" in str(rec["detail"])
        assert (tmp_path / "provisioned.toml").read_text() == good
        screen_says(desk, "Reception")

        server.put(OWN, "# " + "x" * 300_000 + "\n")  # not a config file's size
        desk.stop()
        desk.restart().api_up()
        wait_for(lambda: "larger than 256 KiB" in str(record(tmp_path).get("detail")),
                 what="the oversized file refused")
        assert (tmp_path / "provisioned.toml").read_text() == good

        server.put(OWN, '[phone]\nname = 42\nring_timeout_seconds = 1\n')  # wrong type, range
        desk.stop()
        desk.restart().api_up()
        wait_for(lambda: record(tmp_path)["result"] == "refused", what="the wrong file refused")
        detail = str(record(tmp_path)["detail"])
        assert "phone.name: must be a string, not int" in detail
        assert "phone.ring_timeout_seconds: must be between 5 and 3600" in detail
        assert (tmp_path / "provisioned.toml").read_text() == good

        stop(server)
        desk.stop()
        desk.restart().api_up()
        screen_says(desk, "Reception", timeout=10)  # at once: the last good settings
        wait_for(lambda: record(tmp_path)["result"] == "failed" and
                 "Connection refused" in str(record(tmp_path)["detail"]),
                 what="the server down")
        assert record(tmp_path)["good_sources"] == [f"{server.url}/{OWN}"]
        assert (tmp_path / "provisioned.toml").read_text() == good
    finally:
        desk.stop()


def test_a_slow_server_and_an_untrusted_certificate_change_nothing(
        tmp_path: Path, https, kamailio: Kamailio) -> None:
    server = https(trickle=0.5)  # 0.5 s a byte: a 30-byte file takes 15 s, more than 10 s
    server.put(OWN, '[phone]\nname = "Reception desk"\n')
    desk = phone(tmp_path, server, kamailio)
    try:
        wait_for(lambda: record(tmp_path).get("result") == "failed", timeout=20,
                 what="the slow server given up")
        assert "took longer than 10 s" in str(record(tmp_path)["detail"])
        assert desk.state()["phone"] == "idle"  # working all along
        assert not (tmp_path / "provisioned.toml").exists()
    finally:
        desk.stop()
    stop(server)
    server = https()
    server.put(OWN, '[phone]\nname = "Reception desk"\n')
    (tmp_path / "provisioning.json").unlink()
    desk = start(tmp_path, env={"DESKPHONE_MAC": MAC},
                 provisioning={"url": server.url})  # the system's CAs: not the test's
    try:
        wait_for(lambda: record(tmp_path).get("result") == "failed", what="the certificate")
        assert "certificate is not trusted" in str(record(tmp_path)["detail"])
        assert not (tmp_path / "provisioned.toml").exists()
    finally:
        desk.stop()


def test_a_fresh_card_with_only_the_provisioning_url_comes_up_on_the_served_settings(
        tmp_path: Path, https, kamailio: Kamailio) -> None:
    server = https()
    port = free_port()
    server.put("default.toml", toml({
        "sip": lab_sip(kamailio.port),
        "hardware": {"pin_factory": "mock", "display": "none"},
        "audio": {"backend": "null"}}))
    server.put(OWN, '[phone]\nname = "Reception"\n')
    config = tmp_path / "config.toml"
    config.write_text(toml({"provisioning": {"url": server.url, "ca_file": str(server.ca)},
                            "phone": {"state_dir": str(tmp_path), "start_jitter_seconds": 0},
                            "control": {"listen": f"127.0.0.1:{port}"}}))
    log = tmp_path / "deskphone.log"
    with log.open("w") as err:
        first = subprocess.run([sys.executable, "-m", "firmware", "run", "--config", str(config)],
                               stderr=err, timeout=60, env={**os.environ, "DESKPHONE_MAC": MAC})
    assert first.returncode == 75, log.read_text()  # systemd starts it again, now usable
    assert "sip.server: required" in log.read_text()
    check = subprocess.run([sys.executable, "-m", "firmware", "check-config", "--config",
                            str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'name = "Reception"' in check.stdout and "provisioned.toml over it" in check.stdout
    assert "pw101" not in check.stdout
    desk = start(tmp_path, command="run", config=config, env={"DESKPHONE_MAC": MAC})
    try:
        screen_says(desk, "Reception")
    finally:
        desk.stop()
