"""The firmware as a subprocess, for every system test: one config writer, one start, one
`state()`.

`start(tmp_path, ...)` writes a config (defaults: a SIP server nobody answers, Alice Martin's
phone in Belgium with its state in tmp_path, the control API on a free loopback port), starts
`deskphone simulate --headless` (or `run`) with it, waits for the control API and returns a
`Desk` to drive it through that API only. Sections are given as dicts and merged over the
defaults; a key set to None is left out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.layers import value_text
from tests.helpers import free_port, http, wait_for

Section = Mapping[str, Any]

# A registrar nobody answers (tests with one use the lab); any free local port.
NO_SIP: dict[str, Any] = {"server": "127.0.0.1", "port": 9, "username": "101",
                          "password": "pw101", "bind": "127.0.0.2:0"}


def lab_sip(registrar_port: int) -> dict[str, Any]:
    """[sip] for a phone registered as 101 with the lab's Kamailio on 127.0.0.1."""
    from tests.lab.fixtures import free_udp

    return {"server": "127.0.0.1", "port": registrar_port,
            "domain": f"127.0.0.1:{registrar_port}", "username": "101", "password": "pw101",
            "bind": f"127.0.0.2:{free_udp('127.0.0.2')}"}


def odoo_section(tmp_path: Path, url: str, **extra: Any) -> dict[str, Any]:
    """[odoo] for Alice on the Odoo double at `url`, her API key in a file of mode 600."""
    from tests.odoo_double import ALICE, DATABASE, KEYS

    key = tmp_path / "odoo.key"
    key.write_text(KEYS[ALICE])
    key.chmod(0o600)
    return {"url": url, "database": DATABASE, "login": "alice@example.com",
            "api_key_file": str(key), **extra}


def toml(sections: Mapping[str, Section | None]) -> str:
    """The TOML of `sections` (strings, numbers, booleans and lists of them)."""
    out = []
    for name, values in sections.items():
        if values is None:
            continue
        out.append(f"[{name}]")
        out += [f"{key} = {value_text(v)}" for key, v in values.items() if v is not None]
        out.append("")
    return "\n".join(out)


def write_config(tmp_path: Path, *, sip: Section | None = None, phone: Section | None = None,
                 control_port: int | None = None, **sections: Section | None) -> Path:
    """config.toml in tmp_path: the defaults with `sip` and `phone` merged over them, any
    other section as given (odoo=..., audio=..., hardware=...)."""
    doc: dict[str, Section | None] = {
        "sip": {**NO_SIP, **(sip or {})},
        # No power-on jitter: a test machine may have just booted (app.start_delays).
        "phone": {"name": "Alice Martin", "region": "BE", "state_dir": str(tmp_path),
                  "start_jitter_seconds": 0,
                  **(phone or {})},
        **sections,
    }
    if control_port is not None:
        doc["control"] = {"listen": f"127.0.0.1:{control_port}"}
    path = tmp_path / "config.toml"
    path.write_text(toml(doc))
    return path


def state(base: str) -> dict[str, Any]:
    """/state of the phone whose control API is at `base`."""
    doc: dict[str, Any] = http("GET", f"{base}/state")[1]
    return doc


@dataclass
class Desk:
    """A running firmware, driven through its control API."""

    base: str
    log: Path
    launch: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.proc = self.launch()

    def state(self) -> dict[str, Any]:
        return state(self.base)

    def keys(self, keys: str) -> None:
        assert http("POST", f"{self.base}/keys", {"keys": keys})[0] == 202

    def hook(self, off: bool) -> None:
        assert http("POST", f"{self.base}/hook", {"off_hook": off})[0] == 202

    def until(self, check: Callable[[dict[str, Any]], object], what: str,
              timeout: float = 15) -> dict[str, Any]:
        return wait_for(lambda: d if check(d := self.state()) else None, timeout=timeout,
                        what=what)

    def api_up(self, timeout: float = 20) -> Desk:
        wait_for(lambda: http("GET", f"{self.base}/state")[0] == 200, timeout=timeout,
                 what="the control API")
        return self

    def restart(self) -> Desk:
        """The same phone started again (after `kill()` or `stop()`)."""
        self.proc = self.launch()
        return self

    def kill(self) -> None:
        """A power cut: no chance to clean up."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM as systemd sends it; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


def start(tmp_path: Path, *, command: str = "simulate", config: Path | None = None,
          env: Mapping[str, str] | None = None, wait: bool = True,
          prefix: Sequence[str] = (), **sections: Any) -> Desk:
    """The firmware with the config `write_config` makes of `sections` (or `config`), its
    stderr in tmp_path/deskphone.log, run under `prefix` (e.g. `ip netns exec <name>`); waits
    for the control API unless `wait` is false."""
    port = free_port()
    path = config or write_config(tmp_path, control_port=port, **sections)
    if config is not None:
        port = _control_port(path)
    log = tmp_path / "deskphone.log"
    args = [*prefix, sys.executable, "-m", "firmware", command]
    if command == "simulate":
        args.append("--headless")
    args += ["--config", str(path)]

    def launch() -> subprocess.Popen[bytes]:
        with log.open("a") as err:  # the child keeps its own descriptor
            return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})

    desk = Desk(f"http://127.0.0.1:{port}", log, launch)
    if wait:
        try:
            desk.api_up()
        except BaseException:
            desk.stop()
            raise
    return desk


def _control_port(path: Path) -> int:
    import tomllib

    listen = tomllib.loads(path.read_text())["control"]["listen"]
    return int(listen.rpartition(":")[2])
