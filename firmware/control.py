"""The control API: local HTTP + JSON, like a desk phone's Action URI (DESIGN.md section 2).

Owns: the HTTP server, request checking (token, size, JSON shape) and the `/state` document.
Never touches: phone state. It reads the daemon's last published frame and posts the same events
the keypad and hook switch post; a request never waits for the Phone to handle them.

    GET  /state        the phone as JSON
    GET  /screen.png   the current display frame
    POST /keys         {"keys": "0470123456D"}  ("+" is a long press of 0; "long": true makes
                       every key of the request a long press)
    POST /hook         {"off_hook": true | false}
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from firmware.config import ControlConfig
from firmware.events import KEYS, Action, Event, HookLifted, HookReplaced, KeyPressed, Post
from firmware.frame import Published
from firmware.phone import CONTACTS, MENU, MENU_ITEMS, QUEUE, RECENT, Snapshot
from firmware.ui import screens

log = logging.getLogger("control")

MAX_BODY = 64 * 1024
MAX_KEYS = 256


def state_document(snapshot: Snapshot, lines: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The `/state` JSON: the contract of DESIGN.md, plus a few fields for people debugging."""
    s = snapshot.state
    call = None
    if s.call is not None:
        call = {
            "direction": s.call.direction,
            "remote": s.call.remote,
            "name": s.call.name,
            "state": s.call.state,
            "seconds": snapshot.call_seconds(),
            "muted": s.call.muted,
            "encrypted": s.call.encrypted,
            "codec": s.call.codec,
        }
    calls = [
        {"id": c.id, "direction": c.direction, "remote": c.remote, "name": c.name,
         "state": c.state, "seconds": snapshot.call_seconds(c), "muted": c.muted,
         "encrypted": c.encrypted, "codec": c.codec}
        for c in snapshot.calls()
    ]
    doc: dict[str, Any] = {
        "phone": s.mode,
        "registration": s.registration,
        "registration_reason": s.registration_reason,
        "entry": s.entry,
        "call": call,
        "calls": calls,
        "queue": [
            {"id": e.id, "name": e.name, "number": e.number, "summary": e.summary,
             "model": e.model, "res_id": e.res_id, "due": e.due, "overdue": e.overdue,
             "title": e.title}
            for e in s.queue
        ],
        "screen": list(lines),
        "odoo": s.odoo,
        "outbox": s.outbox,
        "off_hook": s.off_hook,
        "message": s.message,
        "dnd": s.dnd,
        "missed": s.missed_unseen,
        "mwi": {"new": s.mwi[0], "old": s.mwi[1]},
        "problems": [screens.problem_text(part, message) for part, message in s.problems],
        "asleep": s.asleep,
        "prompt": None if s.prompt is None else {"kind": s.prompt.kind,
                                                 "question": s.prompt.question,
                                                 "activity_id": s.prompt.activity_id},
    }
    if s.mode in (QUEUE, CONTACTS, RECENT):
        doc["selected"] = s.selected
    elif s.mode == MENU and not s.menu_page:
        doc["selected"] = s.selected % len(MENU_ITEMS)  # the highlighted item, as drawn
    return doc


class BadRequest(Exception):
    pass


def parse_keys(body: Any) -> list[Event]:
    """`{"keys": "...", "long": bool}` -> key events; every key is checked before any is sent."""
    if not isinstance(body, dict) or not isinstance(body.get("keys"), str):
        raise BadRequest('expected {"keys": "<keys>"}')
    keys = body["keys"]
    long = body.get("long", False)
    if not isinstance(long, bool):
        raise BadRequest('"long" must be true or false')
    if not keys:
        raise BadRequest('"keys" is empty')
    if len(keys) > MAX_KEYS:
        raise BadRequest(f'"keys" is longer than {MAX_KEYS}')
    events: list[Event] = []
    for char in keys:
        if char == "+":
            events.append(KeyPressed("0", long=True))
        elif char.upper() in KEYS and (char.isdigit() or char in "*#" or char.isupper()):
            events.append(KeyPressed(char, long=long))
        else:
            raise BadRequest(f"{char!r} is not a key: use 0-9 * # A B C D and + (long 0)")
    return events


def parse_hook(body: Any) -> Event:
    if not isinstance(body, dict) or not isinstance(body.get("off_hook"), bool):
        raise BadRequest('expected {"off_hook": true|false}')
    return HookLifted() if body["off_hook"] else HookReplaced()


class ControlServer:
    """The HTTP server on its own threads; it only reads `published()` and calls `post`."""

    name = "control"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, config: ControlConfig, published: Any) -> None:
        self.config = config
        self._published = published  # callable returning the daemon's Published
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    def start(self, post: Post) -> None:
        handler = _make_handler(self, post)
        try:
            self._server = ThreadingHTTPServer((self.config.host, self.config.port), handler)
        except OSError as exc:
            raise OSError(f"control API cannot listen on {self.config.host}:{self.config.port}: "
                          f"{exc.strerror}") from exc
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        # A short poll interval only makes stop() quick; requests are served at once anyway.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="control", daemon=True)
        self._thread.start()
        log.info("control API on http://%s:%d/state", self.config.host, self.port)

    def execute(self, action: Action) -> None:  # pragma: no cover - handles nothing
        pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def published(self) -> Published:
        published: Published = self._published()
        return published


def _make_handler(server: ControlServer, post: Post) -> type[BaseHTTPRequestHandler]:
    token = server.config.token

    class Handler(BaseHTTPRequestHandler):
        server_version = "deskphone"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

        def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: Any) -> None:
            self._reply(status, json.dumps(doc, ensure_ascii=False).encode())

        def _error(self, status: int, reason: str) -> None:
            self._json(status, {"error": reason})

        def _authorised(self) -> bool:
            if token is None:
                return True
            given = self.headers.get("Authorization", "")
            expected = f"Bearer {token.reveal()}"
            if hmac.compare_digest(given.encode(), expected.encode()):
                return True
            self._error(HTTPStatus.UNAUTHORIZED, "missing or wrong token "
                        "(send 'Authorization: Bearer <token>')")
            return False

        def do_GET(self) -> None:
            if not self._authorised():
                return
            published = server.published()
            if self.path in ("/state", "/state/"):
                self._json(HTTPStatus.OK, state_document(published.snapshot, published.lines))
            elif self.path == "/screen.png":
                buffer = io.BytesIO()
                published.image.save(buffer, format="PNG")
                self._reply(HTTPStatus.OK, buffer.getvalue(), "image/png")
            elif self.path in ("/keys", "/hook"):
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"use POST for {self.path}")
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such resource: {self.path}")

        def do_POST(self) -> None:
            if not self._authorised():
                return
            if self.path not in ("/keys", "/hook"):
                if self.path in ("/state", "/screen.png"):
                    self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"use GET for {self.path}")
                else:
                    self._error(HTTPStatus.NOT_FOUND, f"no such resource: {self.path}")
                return
            try:
                body = self._body()
                events = parse_keys(body) if self.path == "/keys" else [parse_hook(body)]
            except BadRequest as exc:
                self._error(HTTPStatus.BAD_REQUEST, str(exc))
                return
            for event in events:
                post(event)
            self._json(HTTPStatus.ACCEPTED, {"queued": len(events)})

        def _body(self) -> Any:
            length_text = self.headers.get("Content-Length")
            if length_text is None or not length_text.isdigit():
                raise BadRequest("Content-Length is required")
            length = int(length_text)
            if length > MAX_BODY:
                # Read nothing more; the connection closes after this answer.
                self.close_connection = True
                raise BadRequest(f"body larger than {MAX_BODY} bytes")
            raw = self.rfile.read(length)
            try:
                return json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(f"body is not JSON: {exc}") from None

        def do_PUT(self) -> None:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET or POST")

        do_DELETE = do_PUT
        do_PATCH = do_PUT

    return Handler
