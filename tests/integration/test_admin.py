"""The phone's web page over HTTP, against `deskphone simulate --headless` with `[admin]` on
loopback: logging in, sessions, CSRF, the rate limit, Basic auth for scripts, each page, the
buttons, and bad input (oversized forms, path tricks). Secrets never appear on any page."""

from __future__ import annotations

import base64
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.desk import Desk, start
from tests.helpers import free_port, wait_for

PASSWORD = "correct horse battery"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kw: object) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect())


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Browser:
    """A person's browser: keeps the session cookie, follows nothing by itself."""

    base: str
    cookie: str = ""
    seen: list[str] = field(default_factory=list)

    def ask(self, method: str, path: str, form: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Answer:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={**({"Cookie": self.cookie} if self.cookie
                                                     else {}), **(headers or {})})
        try:
            with OPENER.open(request, timeout=10) as r:
                answer = Answer(r.status, dict(r.headers), r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as exc:
            answer = Answer(exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace"))
        cookie = answer.headers.get("Set-Cookie", "")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        self.seen.append(answer.body)
        return answer

    def csrf(self, path: str = "/") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.ask("GET", path).body)
        assert found, "no CSRF token on the page"
        return found.group(1)


def desk_with_admin(tmp_path: Path, **admin: str) -> tuple[Desk, str]:
    port = free_port()
    password = tmp_path / "admin_password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    section: dict[str, str] = {"listen": f"127.0.0.1:{port}", **admin}
    if "password_file" in admin:
        section["password_file"] = str(password)
    desk = start(tmp_path, admin=section)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: Browser(base).ask("GET", "/login").status == 200, what="the web page")
    return desk, base


@pytest.fixture
def guarded(tmp_path: Path):
    desk, base = desk_with_admin(tmp_path, password_file="x")
    try:
        yield desk, base
    finally:
        desk.stop()


def test_logging_in_then_every_page_with_no_secret_anywhere(guarded) -> None:
    desk, base = guarded
    b = Browser(base)
    first = b.ask("GET", "/")
    assert first.status == 303 and first.headers["Location"] == "/login"
    wrong = b.ask("POST", "/login", {"user": "admin", "password": "nope"})
    assert wrong.status == 401 and "Wrong user or password" in wrong.body
    ok = b.ask("POST", "/login", {"user": "admin", "password": PASSWORD})
    assert ok.status == 303 and "HttpOnly" in ok.headers["Set-Cookie"]
    status = b.ask("GET", "/")
    assert status.status == 200
    assert "Registration" in status.body and 'http-equiv="refresh"' in status.body
    assert b.ask("GET", "/screen.png").body.startswith("\ufffdPNG")
    assert "Desk phone" in b.ask("GET", "/screen").body
    assert "No calls yet" in b.ask("GET", "/recent").body
    config = b.ask("GET", "/config").body
    assert "[sip]" in config and "username = &quot;101&quot;" in config
    logs = b.ask("GET", "/logs?q=logged+in").body
    assert "web page: logged in from 127.0.0.1" in logs
    assert "starting with" not in logs  # the search keeps only what matches
    for body in b.seen:
        assert PASSWORD not in body and "pw101" not in body
    assert PASSWORD not in desk.log.read_text()
    out = b.ask("POST", "/logout", {"csrf": b.csrf()})
    assert out.status == 303
    assert b.ask("GET", "/").status == 303  # the session is gone


def test_a_form_without_its_csrf_token_is_refused_and_with_it_works(guarded) -> None:
    desk, base = guarded
    b = Browser(base)
    b.ask("POST", "/login", {"user": "admin", "password": PASSWORD})
    refused = b.ask("POST", "/reregister", {})
    assert refused.status == 403 and "security token" in refused.body
    assert b.ask("POST", "/reregister", {"csrf": "forged"}).status == 403
    done = b.ask("POST", "/reregister", {"csrf": b.csrf()})
    assert done.status == 303
    wait_for(lambda: "registering now" in desk.log.read_text(), what="SIP told to register")


def test_five_wrong_passwords_then_a_wait(guarded) -> None:
    _, base = guarded
    b = Browser(base)
    for _ in range(5):
        assert b.ask("POST", "/login", {"user": "admin", "password": "guess"}).status == 401
    locked = b.ask("POST", "/login", {"user": "admin", "password": PASSWORD})
    assert locked.status == 429 and int(locked.headers["Retry-After"]) >= 30
    assert "try again in" in locked.body


def test_scripts_use_basic_auth(guarded) -> None:
    _, base = guarded
    b = Browser(base)
    good = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert b.ask("GET", "/", headers={"Authorization": f"Basic {good}"}).status == 200
    bad = base64.b64encode(b"admin:nope").decode()
    answer = b.ask("GET", "/", headers={"Authorization": f"Basic {bad}"})
    assert answer.status == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
    # A script posts without a cookie, so no CSRF token is asked of it.
    assert b.ask("POST", "/reregister", {}, {"Authorization": f"Basic {good}"}).status == 303


def test_bad_input_is_refused_and_changes_nothing(guarded) -> None:
    _, base = guarded
    b = Browser(base)
    b.ask("POST", "/login", {"user": "admin", "password": PASSWORD})
    big = b.ask("POST", "/reregister", {"csrf": "x" * 20000})
    assert big.status == 413
    host, port = base.removeprefix("http://").split(":")
    for path in ("/../../etc/passwd", "/logs/..%2f..%2fetc/passwd", "//etc/passwd"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {b.cookie}\r\n\r\n".encode())
            reply = s.recv(4096).decode(errors="replace")
        assert reply.split(" ")[1] in ("400", "404"), (path, reply[:80])
        assert "root:" not in reply
    assert b.ask("GET", "/").status == 200  # still serving


def test_restart_starts_the_phone_again_in_the_same_process(guarded) -> None:
    desk, base = guarded
    b = Browser(base)
    b.ask("POST", "/login", {"user": "admin", "password": PASSWORD})
    pid = desk.proc.pid
    answer = b.ask("POST", "/restart", {"csrf": b.csrf()})
    assert answer.status == 200 and "restarts" in answer.body
    wait_for(lambda: desk.log.read_text().count("starting with") == 2, timeout=20,
             what="a second start")
    wait_for(lambda: Browser(base).ask("GET", "/login").status == 200, what="the page again")
    assert desk.proc.pid == pid and desk.proc.poll() is None
    assert Browser(base, b.cookie).ask("GET", "/").status == 303  # sessions start afresh
    # The Logs page still has the lines that led to the restart, then the new start's.
    again = Browser(base)
    again.ask("POST", "/login", {"user": "admin", "password": PASSWORD})
    logs = again.ask("GET", "/logs").body
    assert logs.index("web page: restart (from 127.0.0.1)") < logs.rindex("starting with")


def test_on_loopback_without_a_password_no_login_is_asked(tmp_path: Path) -> None:
    desk, base = desk_with_admin(tmp_path)
    try:
        b = Browser(base)
        assert b.ask("GET", "/").status == 200
        assert b.ask("POST", "/reregister", {"csrf": b.csrf()}).status == 303
        assert b.ask("POST", "/reregister", {}).status == 403  # CSRF all the same
    finally:
        desk.stop()
