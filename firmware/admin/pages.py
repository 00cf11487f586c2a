"""The web page's HTML: server-rendered, no script, small enough for a Pi Zero to send at once.

Owns: turning a snapshot of the phone, the effective config and the log into pages. Every value
shown is escaped here. Never touches: HTTP, sessions or the phone's state; it reads what it is
given. The status page refreshes itself with `<meta http-equiv="refresh">`: no JavaScript.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence

from firmware.admin.configform import Field, Row, text_of
from firmware.phone import Snapshot
from firmware.ui import screens

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f6f6}
header{background:#263238;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center}
header a{color:#cfd8dc;text-decoration:none}header a.on{color:#fff;font-weight:bold}
header form{margin-left:auto}main{padding:1em;max-width:60em}
table{border-collapse:collapse;background:#fff}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}th{width:12em;color:#555;font-weight:normal}
.bad{color:#b71c1c;font-weight:bold}.good{color:#1b5e20;font-weight:bold}
pre{background:#fff;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere;border:1px solid #ddd}
button{padding:.4em 1em}.problem{background:#ffebee;padding:.5em;border-left:4px solid #b71c1c}
.form input,.form select{font:inherit}.help{color:#555;font-size:.9em}
.bad-row th{color:#b71c1c}
.screen{image-rendering:pixelated;width:384px;border:8px solid #111;background:#000}
"""

NAV = (("/", "Status"), ("/screen", "Screen"), ("/recent", "Recent calls"),
       ("/config", "Configuration"), ("/logs", "Logs"))


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, *, csrf: str | None = None, here: str = "",
         refresh: int | None = None) -> bytes:
    """A whole page: the navigation (with log-out when logged in) and `body`."""
    nav = "".join(f'<a href="{href}"{" class=on" if href == here else ""}>{e(label)}</a>'
                  for href, label in NAV) if csrf is not None else ""
    logout = (f'<form method="post" action="/logout">{hidden(csrf)}'
              f'<button>Log out</button></form>') if csrf is not None else ""
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">{meta}'
            f"<title>{e(title)} - desk phone</title><style>{STYLE}</style></head><body>"
            f"<header><strong>Desk phone</strong>{nav}{logout}</header>"
            f"<main><h1>{e(title)}</h1>{body}</main></body></html>").encode()


def hidden(csrf: str | None) -> str:
    return f'<input type="hidden" name="csrf" value="{e(csrf or "")}">'


def login(message: str = "") -> bytes:
    note = f'<p class="problem">{e(message)}</p>' if message else ""
    return page("Log in", f'{note}<form method="post" action="/login">'
                '<p><label>User <input name="user" value="admin" autocomplete="username">'
                '</label></p><p><label>Password <input type="password" name="password" '
                'autocomplete="current-password" autofocus></label></p>'
                '<p><button>Log in</button></p></form>')


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows) + \
        "</table>"


def _uptime(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return (f"{days} d " if days else "") + f"{hours} h {minutes:02d} min"


def status(snap: Snapshot, *, transport: str, server: str, uptime: float, addresses: list[str],
           csrf: str, message: str = "", provisioning: str = "",
           config_layers: Sequence[str] = (), warnings: Sequence[str] = (),
           can_provision: bool = False) -> bytes:
    s = snap.state
    registered = s.registration == "registered"
    reg = (f'<span class="{"good" if registered else "bad"}">{e(s.registration)}</span>'
           + (f" ({e(s.registration_reason)})" if s.registration_reason else ""))
    odoo = f"{e(s.odoo)}" + (f" ({e(s.odoo_reason)})" if s.odoo_reason else "") + \
        f", {s.outbox} to send"
    calls = "<br>".join(
        f"{e(c.direction)} {e(c.name or c.remote)}"
        f"{' (' + e(c.remote) + ')' if c.name else ''}: {e(c.state)}, "
        f"{snap.call_seconds(c)} s" for c in snap.calls()) or "none"
    problems = "".join(f'<p class="problem">{e(screens.problem_text(part, text))}</p>'
                       for part, text in s.problems)
    problems += "".join(f'<p class="problem">{e(w)}</p>' for w in warnings)
    note = f"<p>{e(message)}</p>" if message else ""
    body = note + problems + _rows([
        ("Registration", reg),
        ("Server", f"{e(server)} over {e(transport.upper())}"),
        ("Calls", calls),
        ("Odoo", odoo),
        ("Phone", e(s.mode)),
        ("Uptime", e(_uptime(uptime))),
        ("Version", e(snap.settings.version)),
        ("IP addresses", e(", ".join(addresses) or "none") +
         (f" (towards the server: {e(s.address)})" if s.address else "")),
        ("Settings", "the file" + "".join(f", then {e(layer)}" for layer in config_layers)),
        *((("Provisioning", e(provisioning)),) if provisioning else ()),
        ("Updated", e(time.strftime("%H:%M:%S", time.localtime(snap.wall)))),
    ]) + (f'<p><form method="post" action="/reregister" style="display:inline">{hidden(csrf)}'
          f'<button>Register again</button></form> '
          f'<form method="post" action="/restart" style="display:inline">{hidden(csrf)}'
          f'<button>Restart the phone</button></form>'
          + (f' <form method="post" action="/provision" style="display:inline">{hidden(csrf)}'
             f'<button>Fetch provisioning now</button></form>' if can_provision else "")
          + '</p>')
    return page("Status", body, csrf=csrf, here="/", refresh=5)


def screen(lines: Iterable[str], csrf: str) -> bytes:
    text = "\n".join(lines)
    body = (f'<p><img class="screen" src="/screen.png" alt="{e(text)}"></p><pre>{e(text)}</pre>')
    return page("Screen", body, csrf=csrf, here="/screen", refresh=2)


def recent(snap: Snapshot, csrf: str) -> bytes:
    rows = "".join(
        f"<tr><td>{e(time.strftime('%Y-%m-%d %H:%M', time.localtime(r.started)))}</td>"
        f"<td>{'in' if r.direction == 'in' else 'out'}</td><td>{e(r.name or '')}</td>"
        f"<td>{e(r.number)}</td><td>{e(r.outcome)}</td><td>{r.seconds} s</td></tr>"
        for r in snap.state.recent)
    body = ("<table><tr><th>When</th><th>Way</th><th>Name</th><th>Number</th><th>Outcome</th>"
            f"<th>Talk</th></tr>{rows}</table>") if rows else "<p>No calls yet.</p>"
    return page("Recent calls", body, csrf=csrf, here="/recent")


def config(rows: list[Row], rendered: str, csrf: str, *, problems: Sequence[str] = (),
           message: str = "", can_undo: bool = False) -> bytes:
    """The form (one box per setting, its source, its help and any problem beside it), then
    the configuration in effect as `check-config` prints it."""
    top = f'<p class="good">{e(message)}</p>' if message else ""
    if problems or any(r.problems for r in rows):
        count = len(problems) + sum(len(r.problems) for r in rows)
        where = ", ".join(f'<a href="#{e(r.field.name)}">{e(r.field.name)}</a>'
                          for r in rows if r.problems)
        top += (f'<p class="problem">Nothing was changed: {count} '
                f'problem{"s" if count != 1 else ""} below'
                + (f" ({where})" if where else "") + ".</p>")
    top += "".join(f'<p class="problem">{e(p)}</p>' for p in problems)
    body, section = [], ""
    for r in rows:
        f = r.field
        if f.section != section:
            if section:
                body.append("</table>")
            section = f.section
            body.append(f'<h2>[{e(section)}]</h2><table class="form">')
        body.append(f'<tr{" class=bad-row" if r.problems else ""}><th><label for="{e(f.name)}">'
                    f'{e(f.key)}</label></th><td>{_box(r)}'
                    + "".join(f'<div class="problem" id="problem-{e(f.name)}">{e(p)}</div>'
                              for p in r.problems)
                    + f'</td><td class="help">{e(f.help)}<br><small>from: {e(r.source)}'
                    f'</small></td></tr>')
    if section:
        body.append("</table>")
    undo = (f'<form method="post" action="/config/undo">{hidden(csrf)}'
            f'<button>Undo the last change</button></form>') if can_undo else ""
    html_body = (
        f"{top}<p>Changes are checked as <code>deskphone check-config</code> checks the file; "
        f"nothing is applied while any problem remains. They are saved on the phone "
        f"(the web page's layer, over the file and provisioning), the previous version kept, and "
        f"the phone restarts with them. An emptied box brings back the file's value or the "
        f"default; password boxes stay empty unless you type a new one.</p>"
        f'<form method="post" action="/config">{hidden(csrf)}{"".join(body)}'
        f'<p><button name="apply" value="1">Check and apply</button></p></form>{undo}'
        f"<h2>In effect now</h2><pre>{e(rendered)}</pre>")
    return page("Configuration", html_body, csrf=csrf, here="/config")


def _box(r: Row) -> str:
    f = r.field
    name = e(f.name)
    if f.kind is bool and not r.problems:
        options = "".join(f'<option value="{v}"{" selected" if r.text == v else ""}>'
                          f'{v or "(default: " + e(text_of_default(f)) + ")"}</option>'
                          for v in ("", "true", "false"))
        return f'<select id="{name}" name="{name}">{options}</select>'
    if f.choices and not r.problems and r.text in ("", *f.choices):
        options = "".join(f'<option value="{e(v)}"{" selected" if r.text == v else ""}>'
                          f'{e(v) if v else "(default: " + e(text_of_default(f)) + ")"}'
                          f'</option>' for v in ("", *f.choices))
        return f'<select id="{name}" name="{name}">{options}</select>'
    if f.secret and not r.text:
        hint = "set; type to replace" if r.secret_set else "not set"
        return (f'<input type="password" id="{name}" name="{name}" autocomplete="off" '
                f'placeholder="({hint})">')
    placeholder = text_of_default(f)
    return (f'<input id="{name}" name="{name}" value="{e(r.text)}" size="36"'
            + (f' placeholder="{e(placeholder)}"' if placeholder else "") + ">")


def text_of_default(f: Field) -> str:
    return text_of(f.default)


def logs(lines: list[str], query: str, csrf: str) -> bytes:
    body = (f'<form method="get" action="/logs"><input name="q" value="{e(query)}" '
            f'placeholder="search"> <button>Search</button></form>'
            f"<p>{len(lines)} line{'s' if len(lines) != 1 else ''}, newest last.</p>"
            f"<pre>{e(chr(10).join(lines))}</pre>")
    return page("Logs", body, csrf=csrf, here="/logs")
