"""The phone's web page: an HTTP server on the standard library, beside the control API.

Owns: the routes, logging in (a form and a session cookie for people, HTTP Basic with user
`admin` for scripts), the CSRF token every form must send back, the size limit on bodies, and
the answers to each request. Never touches: phone state (it reads the daemon's published
snapshot and posts events, like the keypad) or the config file on the SD card: edits go to the
web page's own layer (configform.py, layers.py).

Why the standard library: the pages are few and server-rendered, `http.server` already serves
the control API, and a Pi Zero has no room for a framework's start-up time or memory.

    GET  /              status (refreshes itself)     GET /screen, /screen.png   the display
    GET  /recent        recent calls                  GET /config               the config
    GET  /logs?q=text   the log's last lines          POST /reregister, /restart  buttons
    POST /config        check and apply an edit       POST /config/undo         the previous edit
    GET|POST /login     POST /logout
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from firmware import config as configuration
from firmware import provisioning
from firmware.admin import configform, pages
from firmware.admin.auth import USER, LoginLimiter, Session, Sessions, csrf_ok, password_ok
from firmware.admin.logbuffer import LogBuffer
from firmware.config import AdminConfig, Config
from firmware.events import Action, Post, ReregisterAsked
from firmware.frame import Published

log = logging.getLogger("admin")

MAX_FORM = 16 * 1024  # a form post larger than this is refused unread
COOKIE = "deskphone_session"
LOG_TAIL = "log-tail.txt"  # the Logs page's lines, kept over a restart


def addresses() -> list[str]:
    """This machine's IP addresses with their interfaces (loopback left out), from iproute2;
    the host name's addresses where `ip` is missing."""
    found: list[str] = []
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True,
                             timeout=2, check=True).stdout
        for link in json.loads(out):
            for info in link.get("addr_info", []):
                if link.get("ifname") != "lo" and info.get("scope") != "host":
                    found.append(f"{info['local']} ({link['ifname']})")
        return found
    except (OSError, ValueError, subprocess.SubprocessError, KeyError):
        pass
    try:
        for addr in socket.getaddrinfo(socket.gethostname(), None):
            address = str(addr[4][0])
            if address not in found and not address.startswith(("127.", "::1")):
                found.append(address)
    except OSError:
        pass
    return found


class AdminServer:
    name = "admin"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, settings: AdminConfig, config: Config,
                 published: Callable[[], Published], restart: Callable[[], None],
                 logs: LogBuffer | None = None,
                 provision_now: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.provision_now = provision_now
        self.config = config
        self.published = published
        self.restart = restart
        self.state_dir = config.state_dir()
        self.logs = logs or LogBuffer()
        self.logs.load(self.state_dir / LOG_TAIL)  # the lines before a restart
        self.logs.install()  # now, at build time: the start-up lines are the ones most wanted
        self.form = configform.ConfigForm(Path(config.path), self.state_dir)
        self.sessions = Sessions()
        self.limiter = LoginLimiter()
        self.started = time.monotonic()
        self.port = settings.port
        self._server: ThreadingHTTPServer | None = None

    def start(self, post: Post) -> None:
        handler = _handler(self, post)
        try:
            self._server = ThreadingHTTPServer((self.settings.host, self.settings.port), handler)
        except OSError as exc:
            raise OSError(f"web page cannot listen on {self.settings.host}:"
                          f"{self.settings.port}: {exc.strerror}") from exc
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.1,), name="admin",
                         daemon=True).start()
        log.info("web page on http://%s:%d/", self.settings.host, self.port)

    def execute(self, action: Action) -> None:  # pragma: no cover - handles nothing
        pass

    def stop(self) -> None:
        self.logs.remove()
        self.logs.save(self.state_dir / LOG_TAIL)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler(admin: AdminServer, post: Post) -> type[BaseHTTPRequestHandler]:
    password = admin.settings.password
    open_door = password is None  # only allowed on loopback (config check)

    class Handler(BaseHTTPRequestHandler):
        server_version = "deskphone"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        # ---------------------------------------------------------------- answers

        def _send(self, status: int, body: bytes, kind: str = "text/html; charset=utf-8",
                  headers: tuple[tuple[str, str], ...] = ()) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Content-Security-Policy", "default-src 'self'; "
                             "style-src 'unsafe-inline'; img-src 'self'")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _redirect(self, where: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
            self._send(HTTPStatus.SEE_OTHER, b"", headers=(("Location", where), *headers))

        def _text(self, status: int, text: str) -> None:
            self._send(status, pages.page("Error", f"<p>{pages.e(text)}</p>"))

        # ---------------------------------------------------------------- who is asking

        def _token(self) -> str | None:
            try:
                cookie = SimpleCookie(self.headers.get("Cookie", ""))
            except CookieError:
                return None
            morsel = cookie.get(COOKIE)
            return morsel.value if morsel else None

        def _basic(self) -> bool:
            """HTTP Basic for scripts: `admin` and the password, checked in constant time."""
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Basic "):
                return False
            address = self.client_address[0]
            if admin.limiter.wait(address):
                return False
            try:
                user, _, given = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            ok = password_ok(given, password) and user == USER
            (admin.limiter.succeeded if ok else admin.limiter.failed)(address)
            return ok

        def _session(self) -> tuple[Session | None, tuple[tuple[str, str], ...]]:
            """The caller's session, or a new one when no password is asked (loopback)."""
            session = admin.sessions.get(self._token())
            if session is not None or not open_door:
                return session, ()
            token, session = admin.sessions.create()
            return session, (("Set-Cookie", _cookie(token)),)

        def _who(self) -> tuple[Session | None, bool, tuple[tuple[str, str], ...]]:
            """(session, by Basic auth, headers to add); (None, False, ()) = not logged in."""
            session, headers = self._session()
            if session is not None:
                return session, False, headers
            if self._basic():
                return None, True, ()
            return None, False, ()

        # ---------------------------------------------------------------- methods

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = url.path
            if ".." in path or "\\" in path or "//" in path:
                self._text(HTTPStatus.BAD_REQUEST, "bad path")
                return
            if path == "/login":
                self._send(HTTPStatus.OK, pages.login())
                return
            session, basic, headers = self._who()
            if session is None and not basic:
                if self.headers.get("Authorization", "").startswith("Basic "):
                    # A script with the wrong password: say so the HTTP way, no login form.
                    self._send(HTTPStatus.UNAUTHORIZED, b"wrong user or password\n",
                               "text/plain", (("WWW-Authenticate", 'Basic realm="deskphone"'),))
                else:
                    self._redirect("/login")
                return
            csrf = session.csrf if session is not None else ""
            published = admin.published()
            snap = published.snapshot
            if path == "/":
                body = pages.status(snap, transport=admin.config.sip.transport,
                                    server=_server_of(admin.config), uptime=time.monotonic() -
                                    admin.started, addresses=addresses(), csrf=csrf,
                                    message=_query(url.query, "said"),
                                    provisioning=provisioning.summary(provisioning.read_record(
                                        admin.state_dir)) if admin.config.provisioning else "",
                                    config_layers=admin.config.layers,
                                    warnings=admin.config.warnings,
                                    can_provision=admin.provision_now is not None)
            elif path == "/screen":
                body = pages.screen(published.lines, csrf)
            elif path == "/screen.png":
                buffer = io.BytesIO()
                published.image.save(buffer, format="PNG")
                self._send(HTTPStatus.OK, buffer.getvalue(), "image/png", headers)
                return
            elif path == "/recent":
                body = pages.recent(snap, csrf)
            elif path == "/config":
                body = self._config_page(csrf, message=_query(url.query, "said"))
            elif path == "/logs":
                query = _query(url.query, "q")
                body = pages.logs(admin.logs.search(query), query, csrf)
            else:
                self._text(HTTPStatus.NOT_FOUND, f"no such page: {path}")
                return
            self._send(HTTPStatus.OK, body, headers=headers)

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            try:
                form = self._form()
            except ValueError as exc:
                self._text(HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                           if "larger" in str(exc) else HTTPStatus.BAD_REQUEST, str(exc))
                return
            if path == "/login":
                self._login(form)
                return
            session, basic, _ = self._who()
            if session is None and not basic:
                self._text(HTTPStatus.FORBIDDEN, "log in first")
                return
            # A form from our own page carries the session's token; a script with Basic auth
            # sends no cookie, so a forged cross-site form (which would carry the cookie) cannot
            # pass without the token.
            if session is not None and not csrf_ok(form.get("csrf", ""), session):
                self._text(HTTPStatus.FORBIDDEN, "the form's security token is missing or "
                           "stale: reload the page and try again")
                return
            if path == "/logout":
                admin.sessions.drop(self._token())
                self._redirect("/login", (("Set-Cookie", _cookie("", expire=True)),))
            elif path == "/reregister":
                log.info("web page: register again (from %s)", self.client_address[0])
                post(ReregisterAsked())
                self._redirect("/?said=" + urllib.parse.quote("Registering again"))
            elif path == "/restart":
                log.info("web page: restart (from %s)", self.client_address[0])
                self._restarting("The phone restarts")
            elif path == "/provision" and admin.provision_now is not None:
                log.info("web page: provisioning now (from %s)", self.client_address[0])
                admin.provision_now()
                self._redirect("/?said=" + urllib.parse.quote(
                    "Fetching the provisioning files; a change restarts the phone"))
            elif path == "/config":
                self._edit_config(form, session.csrf if session is not None else "")
            elif path == "/config/undo":
                if admin.form.undo():
                    log.info("web page: configuration change undone (from %s)",
                             self.client_address[0])
                    self._restarting("The previous settings are back; the phone restarts")
                else:
                    self._redirect("/config?said=" + urllib.parse.quote("Nothing to undo"))
            else:
                self._text(HTTPStatus.NOT_FOUND, f"no such action: {path}")

        def _restarting(self, what: str) -> None:
            self._send(HTTPStatus.OK, pages.page(
                "Restarting", f'<p>{pages.e(what)}; this page works again in a few seconds '
                '(log in again): <a href="/">status</a>.</p>'))
            threading.Timer(0.2, admin.restart).start()

        def _config_page(self, csrf: str, *, message: str = "",
                         posted: dict[str, str] | None = None,
                         problems: list[str] | None = None) -> bytes:
            return pages.config(admin.form.rows(posted, problems),
                                configuration.render(admin.config), csrf,
                                problems=configform.loose_problems(problems or []),
                                message=message, can_undo=admin.form.can_undo())

        def _edit_config(self, form: dict[str, str], csrf: str) -> None:
            posted = {k: v for k, v in form.items() if k != "csrf" and k != "apply"}
            try:
                layer, problems = admin.form.edit(posted)
            except configuration.ConfigError as exc:  # the file itself cannot be read now
                layer, problems = {}, exc.problems
            if problems:
                log.info("web page: configuration not changed, %d problem(s): %s",
                         len(problems), "; ".join(problems))
                self._send(HTTPStatus.UNPROCESSABLE_ENTITY, self._config_page(
                    csrf, posted=posted, problems=problems))
                return
            if layer == admin.form.web_layer():
                self._redirect("/config?said=" + urllib.parse.quote("Nothing changed"))
                return
            admin.form.apply(layer)
            changed = sorted(f"{s}.{k}" for s, v in layer.items() for k in v)
            log.info("web page: configuration changed (%s) from %s; restarting",
                     ", ".join(changed), self.client_address[0])
            self._restarting("Saved; the phone restarts with the new settings")

        def _login(self, form: dict[str, str]) -> None:
            address = self.client_address[0]
            wait = admin.limiter.wait(address)
            if wait:
                self._send(HTTPStatus.TOO_MANY_REQUESTS, pages.login(
                    f"Too many wrong passwords: try again in {wait:.0f} s."),
                    headers=(("Retry-After", str(int(wait) + 1)),))
                return
            if open_door or (form.get("user") == USER and
                             password_ok(form.get("password", ""), password)):
                admin.limiter.succeeded(address)
                token, _ = admin.sessions.create()
                log.info("web page: logged in from %s", address)
                self._redirect("/", (("Set-Cookie", _cookie(token)),))
                return
            admin.limiter.failed(address)
            log.warning("web page: wrong password from %s", address)
            self._send(HTTPStatus.UNAUTHORIZED, pages.login("Wrong user or password."))

        def _form(self) -> dict[str, str]:
            length_text = self.headers.get("Content-Length", "0")
            if not length_text.isdigit():
                raise ValueError("Content-Length is required")
            length = int(length_text)
            if length > MAX_FORM:
                self.close_connection = True
                raise ValueError(f"form larger than {MAX_FORM} bytes")
            raw = self.rfile.read(length).decode("utf-8", "replace")
            return {k: v[-1] for k, v in urllib.parse.parse_qs(raw).items()}

    return Handler


def _cookie(token: str, expire: bool = False) -> str:
    age = "; Max-Age=0" if expire else ""
    return f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{age}"


def _query(query: str, name: str) -> str:
    return urllib.parse.parse_qs(query).get(name, [""])[-1][:200]


def _server_of(config: Config) -> str:
    sip = config.sip
    return f"{sip.server}:{sip.port}" if sip.port else f"{sip.server} (DNS)"
