"""Provisioning: the settings an office keeps in one place, fetched by every phone.

Owns: fetching `<url>/default.toml` and `<url>/<mac>.toml` (or the `$MAC` form, as Yealink
writes it) over HTTPS with the certificate checked (the system's CAs, or `[provisioning]
ca_file`), with a size and a time limit; merging them (the phone's own file over the default),
checking the result over the local file with config.py's rules, storing it as the provisioning
layer only when it is good (layers.py: atomic, the previous one kept), the record of the last
attempt the web page shows (provisioning.json), and asking for a restart once the stored
settings changed and no call is on. Never touches: the phone's state, the file on the SD card,
or `[provisioning]` itself (a file served by the server cannot move the phone off that server:
it is ignored there, and said).

At boot the phone starts on the last good layer at once and fetches in the background: a server
that is down or slow never keeps a phone from ringing.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import ssl
import threading
import time
import tomllib
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware import config as configuration
from firmware import layers
from firmware.config import ProvisioningConfig
from firmware.events import Action, Post
from firmware.frame import Published

log = logging.getLogger("provisioning")

MAX_BYTES = 256 * 1024  # a provisioning file is a few hundred bytes; more is not one
TIMEOUT = 10.0  # for the whole of one file, however slowly it trickles
RECORD = "provisioning.json"
IDLE_CHECK_SECONDS = 5.0  # how often a restart waiting for the end of a call looks again


class FetchError(Exception):
    """A file could not be fetched (the server, the network, the certificate)."""


def phone_mac() -> str:
    """This phone's MAC address, 12 lower-case hex digits: the interface of the default route,
    else the first one with an address. `DESKPHONE_MAC` overrides it (the simulator's phones
    share one machine's interfaces)."""
    override = os.environ.get("DESKPHONE_MAC", "")
    if override:
        return override.replace(":", "").replace("-", "").lower()
    net = Path("/sys/class/net")
    names = []
    try:
        with open("/proc/net/route", encoding="ascii") as routes:
            for line in list(routes)[1:]:
                parts = line.split()
                if len(parts) > 1 and parts[1] == "00000000":
                    names.append(parts[0])
    except OSError:
        pass
    with contextlib.suppress(OSError):
        names += sorted(p.name for p in net.iterdir())
    for name in names:
        try:
            mac = (net / name / "address").read_text().strip().replace(":", "").lower()
        except OSError:
            continue
        if len(mac) == 12 and mac != "000000000000":
            return mac
    return "000000000000"


def urls(url: str, mac: str) -> tuple[str, str]:
    """(the default file, this phone's file)."""
    if "$MAC" in url:
        return url.rsplit("/", 1)[0] + "/default.toml", url.replace("$MAC", mac)
    return f"{url}/default.toml", f"{url}/{mac}.toml"


def fetch(url: str, context: ssl.SSLContext, timeout: float = TIMEOUT) -> bytes | None:
    """The file at `url`, or None when the server has none (404, 410); FetchError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise FetchError(f"{url}: not an https:// address")
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=context,
                                       timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        conn.request("GET", path, headers={"User-Agent": "deskphone", "Accept": "*/*"})
        response = conn.getresponse()
        if response.status in (404, 410):
            return None
        if response.status != 200:
            raise FetchError(f"{url}: the server answered {response.status} {response.reason}")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: the server took longer than {timeout:g} s")
            if conn.sock is not None:
                conn.sock.settimeout(max(0.1, deadline - time.monotonic()))
            chunk = response.read1(16384)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BYTES:
                raise FetchError(f"{url}: larger than {MAX_BYTES // 1024} KiB, not a config")
            chunks.append(chunk)
        return b"".join(chunks)
    except ssl.SSLCertVerificationError as exc:
        raise FetchError(f"{url}: the server's certificate is not trusted "
                         f"({exc.verify_message})") from None
    except TimeoutError:
        raise FetchError(f"{url}: the server took longer than {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        conn.close()


def tls_context(settings: ProvisioningConfig, base: Path) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_file:
        ca = Path(settings.ca_file)
        context.load_verify_locations(cafile=str(ca if ca.is_absolute() else base / ca))
    return context


def parse_file(url: str, data: bytes) -> layers.Doc:
    """A fetched file as a layer; FetchError naming the file and the problem."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
        return layers.tables(doc, url)
    except UnicodeDecodeError:
        raise FetchError(f"{url}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise FetchError(f"{url}: {exc}") from None
    except layers.LayerError as exc:
        raise FetchError(str(exc)) from None


class Provisioner:
    """The adapter: fetches at start and every `interval_hours`, or when asked."""

    name = "provisioning"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, settings: ProvisioningConfig, path: Path, state_dir: Path,
                 published: Callable[[], Published] | None = None,
                 restart: Callable[[], None] | None = None,
                 mac: Callable[[], str] = phone_mac) -> None:
        self.settings = settings
        self.published = published
        self.restart = restart
        self.mac = mac
        self.path = path
        self.state_dir = state_dir
        self.layer = self.state_dir / layers.PROVISIONED
        self._cond = threading.Condition()
        self._stopped = False
        self._now = False
        self._thread: threading.Thread | None = None

    def start(self, post: Post) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="provisioning", daemon=True)
        self._thread.start()

    def execute(self, action: Action) -> None:  # pragma: no cover - handles nothing
        pass

    def poke(self) -> None:
        """Fetch now (the web page's button); safe from any thread."""
        with self._cond:
            self._now = True
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            # A fetch in flight ends by its own time limit; the phone does not wait for it
            # (nothing is written until a fetch is whole and checked).
            self._thread.join(timeout=1.0)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                changed = self.once()
            except Exception:
                log.exception("provisioning failed")
                changed = False
            if changed and self._restart_when_idle():
                return
            with self._cond:
                if not self._now and not self._stopped:
                    self._cond.wait(self.settings.interval_hours * 3600)
                self._now = False
                if self._stopped:
                    return

    def _restart_when_idle(self) -> bool:
        """Restart once no call is on and nobody is dialing; False if stopped first."""
        assert self.published is not None and self.restart is not None
        while True:
            state = self.published().snapshot.state
            if state.call is None and not state.others and state.mode in ("idle", "menu"):
                log.info("provisioning: restarting with the new settings")
                self.restart()
                return True
            with self._cond:
                self._cond.wait(IDLE_CHECK_SECONDS)
                if self._stopped:
                    return False

    def once(self) -> bool:
        """One fetch; True when the stored layer changed (a restart applies it)."""
        mac = self.mac()
        default_url, own_url = urls(self.settings.url, mac)
        context = tls_context(self.settings, self.path.parent)
        found: list[str] = []
        docs: list[layers.Doc] = []
        try:
            for url in (default_url, own_url):
                data = fetch(url, context)
                if data is None:
                    log.info("provisioning: %s: none on the server", url)
                    continue
                docs.append(parse_file(url, data))
                found.append(url)
        except FetchError as exc:
            log.warning("provisioning: %s; the phone keeps its settings", exc)
            self._record("failed", str(exc), found)
            return False
        if not docs:
            message = f"no {own_url} and no {default_url} on the server"
            log.warning("provisioning: %s; the phone keeps its settings", message)
            self._record("failed", message, found)
            return False
        merged = layers.merge(*docs)
        if merged.pop("provisioning", None) is not None:
            log.warning("provisioning: [provisioning] in a served file is ignored (only the "
                        "phone's own file says where to fetch from)")
        problems = self._problems(merged)
        if problems:
            message = "not applied: " + "; ".join(problems)
            log.warning("provisioning: %s from %s; the phone keeps its settings",
                        message, " and ".join(found))
            self._record("refused", message, found)
            return False
        try:
            stored = layers.read(self.layer)
        except layers.LayerError:
            stored = {}
        if stored == merged:
            log.info("provisioning: %s unchanged", " and ".join(found))
            self._record("unchanged", "", found, good=True)
            return False
        layers.write(self.layer, f"# Fetched from {' and '.join(found)}; do not edit: the next "
                     f"fetch replaces it.\n" + layers.dump(merged))
        keys = sorted(f"{s}.{k}" for s, v in merged.items() for k in v)
        log.info("provisioning: new settings from %s (%s)", " and ".join(found), ", ".join(keys))
        self._record("applied", "", found, good=True)
        return True

    def _problems(self, merged: layers.Doc) -> list[str]:
        """What config.py finds wrong with the local file under the fetched settings."""
        try:
            base = configuration.read_raw(self.path)
            configuration.parse(layers.merge(base, merged), base=self.path.parent,
                                path=str(self.path))
        except configuration.ConfigError as exc:
            return exc.problems
        return []

    def _record(self, result: str, detail: str, found: list[str], good: bool = False) -> None:
        record = read_record(self.state_dir)
        record.update({"result": result, "detail": detail, "at": time.time(),
                       "sources": found})
        if good:
            record.update({"good_at": time.time(), "good_sources": found})
        path = self.state_dir / RECORD
        tmp = path.with_suffix(".new")
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)


def read_record(state_dir: Path) -> dict[str, Any]:
    """The last attempt (`result`, `detail`, `at`, `sources`) and the last good one (`good_at`,
    `good_sources`); {} before the first."""
    try:
        record = json.loads((state_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def summary(record: dict[str, Any]) -> str:
    """One line for the status page."""
    if not record:
        return "not fetched yet"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.get("at", 0)))
    sources = " and ".join(record.get("sources") or []) or "nothing"
    result = record.get("result")
    if result in ("applied", "unchanged"):
        text = f"{result} from {sources} at {when}"
    else:
        text = f"{result} at {when}: {record.get('detail', '')}"
        if record.get("good_at"):
            good = time.strftime("%Y-%m-%d %H:%M", time.localtime(record["good_at"]))
            text += (f"; running on the last good settings, from "
                     f"{' and '.join(record.get('good_sources') or [])} at {good}")
    return text
