"""A test double of an Odoo 17 server's external API: `POST /jsonrpc` in Odoo's wire format.

It speaks what ODOO.md records from a real Odoo 17 server: `common.version`,
`common.authenticate` (a uid, or `false`), `object.execute_kw` with the error payloads Odoo sends
(AccessDenied, AccessError, MissingError, AttributeError for a method that does not exist,
ValueError for an unknown field, psycopg2's OperationalError for a database that does not
exist), in two flavours: with the enterprise `voip` module (`get_today_call_activities`,
`get_contacts`, `voip.call`) and without it (Odoo Community), plus Odoo 18's "Store" shape for
the queue. It is seeded with awkward data, records every write, and can be made slow, down,
malformed or made to revoke the key, so tests can assert what the phone did to Odoo.

Run it alone (the demo does): `python -m tests.odoo_double --port 8069 [--no-voip]`.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import html
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import phonenumbers

DATABASE = "deskphone"
ALICE, BOB = 2, 6
KEYS = {ALICE: "alice-api-key-0123456789", BOB: "bob-api-key-9876543210"}
LOGINS = {"alice@example.com": ALICE, "bob@example.com": BOB}


class Fault(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _sanitize(number: str, country: str | None) -> str:
    """phone_sanitized: E.164 only when the partner has a country (sms + phonenumbers)."""
    if not number:
        return ""
    if not country:
        return number
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


FIELDS = {
    "res.partner": {"id", "name", "phone", "mobile", "email", "country_code",
                    "phone_sanitized", "phone_mobile_search", "display_name", "write_date",
                    "active"},
    "crm.lead": {"id", "name", "phone", "mobile", "partner_id", "user_id"},
    "project.task": {"id", "name", "partner_id", "user_ids"},
    "helpdesk.ticket": {"id", "name", "partner_id", "user_id"},
    "mail.activity": {"id", "res_model", "res_id", "res_name", "summary", "date_deadline",
                      "state", "activity_type_id", "user_id", "activity_category"},
    "mail.activity.type": {"id", "name", "category"},
    "voip.call": {"id", "phone_number", "direction", "state", "start_date", "end_date",
                  "activity_name", "partner_id", "user_id", "create_date"},
    "res.users": {"id", "name", "login", "voip_username", "voip_secret",
                  "should_auto_reject_incoming_calls", "external_device_number", "tz"},
    "ir.module.module": {"id", "name", "state"},
    "mail.message": {"id", "model", "res_id", "body", "message_type", "subtype_xmlid",
                     "author_id"},
}
# Models with a chatter (mail.thread): message_post works on their records.
CHATTER = {"res.partner", "crm.lead", "project.task", "helpdesk.ticket"}
MANY2ONE = {"partner_id", "user_id", "activity_type_id"}


@dataclass
class OdooDouble:
    voip: bool = True
    store_shape: bool = False  # answer the queue in Odoo 18's {"Activity": [...]} shape
    today: dt.date = dt.date(2026, 11, 28)
    port: int = 0
    delay: float = 0.0  # seconds before every answer (a slow server)
    down: bool = False  # answer HTTP 502 as a proxy in front of a stopped Odoo does
    malformed: bool = False  # answer 200 with an HTML page
    calls: list[tuple[str, str, list[Any], dict[str, Any]]] = field(default_factory=list)
    writes: list[tuple[str, str, list[Any], dict[str, Any]]] = field(default_factory=list)
    round_trips: int = 0
    bytes: int = 0
    # Every server error that Odoo writes to its log with a traceback (a missing method, a
    # missing model): a quiet phone causes none.
    faults: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.keys = dict(KEYS)
        self.tables: dict[str, dict[int, dict[str, Any]]] = {}
        self.next_id = itertools.count(1000)
        self.seed()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ data

    def seed(self) -> None:
        d = self.today
        day = dt.timedelta(days=1)
        partners = [
            (51, "Zoë Dupont", "0470 12 34 56", "", "BE"),
            (52, "Brasserie De Koning", "+32 2 222 22 22", "", "BE"),
            (53, "Łukasz Nowak", "", "+48 601 234 567", "PL"),
            (54, "Acme Corp", "", "", "FR"),  # no number at all
            (55, "Ingrid Jansen", "020 123 4567", "", "NL"),
            (56, "Marc Leroy", "01 42 27 81 86", "", None),  # no country: raw phone_sanitized
        ]
        self.tables["res.partner"] = {
            pid: {"id": pid, "name": name, "phone": phone or False, "mobile": mobile or False,
                  "email": f"{name.split()[0].lower()}@example.com", "country_code": country,
                  "display_name": name, "write_date": f"2026-11-01 08:00:{pid:02d}",
                  "active": True}
            for pid, name, phone, mobile, country in partners
        }
        self.tables["crm.lead"] = {
            31: {"id": 31, "name": "Office chairs for Zoë", "phone": "0470 12 34 56",
                 "mobile": False, "partner_id": 51, "user_id": ALICE},
            32: {"id": 32, "name": "Café Lumière: espresso machines", "phone": "+33 1 42 27 81 86",
                 "mobile": False, "partner_id": False, "user_id": ALICE},
        }
        self.tables["project.task"] = {
            4: {"id": 4, "name": "Install the phones", "partner_id": 52, "user_ids": [ALICE]},
        }
        self.tables["helpdesk.ticket"] = {
            12: {"id": 12, "name": "Printer jammed again", "partner_id": 55, "user_id": ALICE},
        }
        self.tables["mail.activity.type"] = {
            1: {"id": 1, "name": "Call", "category": "phonecall"},
            2: {"id": 2, "name": "Email", "category": "default"},
            3: {"id": 3, "name": "Follow-up call", "category": "phonecall"},
        }
        acts = [
            (101, "crm.lead", 31, "Follow up on the quote", d, 1, ALICE),
            (102, "helpdesk.ticket", 12, "Call back about the printer", d - 2 * day, 1, ALICE),
            (103, "project.task", 4, "", d, 3, ALICE),
            (104, "crm.lead", 32, "Tomorrow's call", d + day, 1, ALICE),  # future
            (105, "crm.lead", 31, "Bob's call", d, 1, BOB),  # another user's
            (106, "res.partner", 54, "Acme has no number", d, 1, ALICE),
            (107, "res.partner", 53, "Ask about the invoice", d - day, 1, ALICE),
            (108, "crm.lead", 31, "Send the brochure", d, 2, ALICE),  # an email, not a call
        ]
        self.tables["mail.activity"] = {}
        for aid, model, res_id, summary, due, type_id, user in acts:
            self.add_activity(model, res_id, summary, due, type_id, user, aid)
        self.tables["voip.call"] = {}
        self.tables["res.users"] = {
            ALICE: {"id": ALICE, "name": "Alice Martin", "login": "alice@example.com",
                    "voip_username": "101", "voip_secret": "pw101",
                    "should_auto_reject_incoming_calls": False, "external_device_number": False,
                    "tz": "Europe/Brussels"},
            BOB: {"id": BOB, "name": "Bob Peeters", "login": "bob@example.com",
                  "voip_username": "102", "voip_secret": "pw102",
                  "should_auto_reject_incoming_calls": False, "external_device_number": False,
                  "tz": False},
        }
        self.tables["ir.module.module"] = {
            1: {"id": 1, "name": "voip", "state": "installed" if self.voip else "uninstallable"},
            2: {"id": 2, "name": "crm", "state": "installed"},
        }
        self.tables["mail.message"] = {}

    def add_activity(self, model: str, res_id: int, summary: str, due: dt.date,
                     type_id: int = 1, user: int = ALICE, aid: int | None = None) -> int:
        aid = aid if aid is not None else next(self.next_id)
        record = self.tables[model][res_id]
        self.tables["mail.activity"][aid] = {
            "id": aid, "res_model": model, "res_id": res_id, "res_name": record["name"],
            "summary": summary or False, "date_deadline": due.isoformat(),
            "activity_type_id": type_id, "user_id": user,
        }
        return aid

    def many_activities(self, count: int) -> None:
        """A big day: `count` call activities on leads and contacts."""
        for n in range(count):
            pid = next(self.next_id)
            self.tables["res.partner"][pid] = {
                "id": pid, "name": f"Customer {n:04d}", "phone": f"+32 470 {n:06d}",
                "mobile": False, "email": False, "country_code": "BE",
                "display_name": f"Customer {n:04d}", "write_date": self.now(), "active": True}
            model = "res.partner" if n % 2 else "crm.lead"
            res_id = pid
            if model == "crm.lead":
                res_id = next(self.next_id)
                self.tables["crm.lead"][res_id] = {
                    "id": res_id, "name": f"Deal {n:04d}", "phone": False, "mobile": False,
                    "partner_id": pid, "user_id": ALICE}
            self.add_activity(model, res_id, f"Call {n}", self.today)

    @staticmethod
    def now() -> str:
        """Odoo's clock as it stamps write_date: UTC, to the second."""
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    def add_partner(self, name: str, phone: str, country: str = "BE") -> int:
        """A contact created in Odoo's browser (write_date: now)."""
        with self.lock:
            pid = next(self.next_id)
            self.tables["res.partner"][pid] = {
                "id": pid, "name": name, "phone": phone, "mobile": False, "email": False,
                "country_code": country, "display_name": name, "write_date": self.now(),
                "active": True}
            return pid

    def many_partners(self, count: int) -> None:
        """An address book of `count` partners with numbers, written one a minute over the
        weeks before (as people add contacts: rarely two in the same second)."""
        start = dt.datetime(2026, 10, 1, 8, 0)
        with self.lock:
            for n in range(count):
                pid = next(self.next_id)
                written = (start + dt.timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S")
                self.tables["res.partner"][pid] = {
                    "id": pid, "name": f"Contact {n:05d}", "phone": f"+32 2 {n:07d}",
                    "mobile": False, "email": False, "country_code": "BE",
                    "display_name": f"Contact {n:05d}", "write_date": written, "active": True}

    def archive_partner(self, pid: int) -> None:
        with self.lock:
            self.tables["res.partner"][pid].update(active=False, write_date=self.now())

    def notes(self, model: str | None = None, res_id: int | None = None
              ) -> list[dict[str, Any]]:
        """Notes posted in chatters, oldest first."""
        return [m for m in self.tables["mail.message"].values()
                if (model is None or m["model"] == model) and
                (res_id is None or m["res_id"] == res_id)]

    def mark_done_in_browser(self, aid: int) -> None:
        """Someone marks the activity done in Odoo's web client."""
        with self.lock:
            del self.tables["mail.activity"][aid]

    def activities(self, uid: int = ALICE) -> dict[int, dict[str, Any]]:
        return {a["id"]: a for a in self.tables["mail.activity"].values()
                if a["user_id"] == uid}

    def voip_calls(self) -> list[dict[str, Any]]:
        return list(self.tables["voip.call"].values())

    def revoke(self, uid: int = ALICE) -> None:
        self.keys[uid] = "revoked"

    # ------------------------------------------------------------------ values

    def _value(self, model: str, rec: dict[str, Any], name: str) -> Any:
        if name not in FIELDS[model]:
            raise Fault("builtins.ValueError", f"Invalid field '{name}' on model '{model}'")
        if model == "res.partner" and name == "phone_sanitized":
            return _sanitize(rec.get("phone") or rec.get("mobile") or "", rec["country_code"])
        if model == "ir.module.module" and name == "state" and rec["name"] == "voip":
            return "installed" if self.voip else "uninstallable"  # follows `voip` when set late
        if model == "res.partner" and name == "phone_mobile_search":
            return None  # search only
        if model == "mail.activity":
            if name == "state":
                due = dt.date.fromisoformat(rec["date_deadline"])
                return "overdue" if due < self.today else "today" if due == self.today \
                    else "planned"
            if name == "activity_category":
                return self.tables["mail.activity.type"][rec["activity_type_id"]]["category"]
        value = rec.get(name, False)
        if name in MANY2ONE and value:
            target = {"partner_id": "res.partner", "user_id": "res.users",
                      "activity_type_id": "mail.activity.type"}[name]
            return [value, self.tables[target][value]["name"]]
        return value

    def _leaf(self, model: str, rec: dict[str, Any], leaf: list[Any]) -> bool:
        path, op, want = leaf
        if "." in path:
            head, rest = path.split(".", 1)
            target = {"activity_type_id": "mail.activity.type", "partner_id": "res.partner"}
            if head not in target:
                raise Fault("builtins.ValueError", f"Invalid field {model}.{head} in leaf {leaf}")
            sub = self.tables[target[head]].get(rec.get(head) or 0)
            return sub is not None and self._leaf(target[head], sub, [rest, op, want])
        if path == "phone_mobile_search" and model == "res.partner":
            def strip(s: str) -> str:
                return "".join(c for c in s if c.isdigit() or c == "+")
            return any(strip(n) == strip(str(want)) for n in
                       (rec.get("phone") or "", rec.get("mobile") or "") if n)
        value = self._value(model, rec, path)
        if isinstance(value, list) and path in MANY2ONE:
            value = value[0]
        if op == "=":
            return bool(value == want or (want is False and not value))
        if op == "!=":
            return bool(value != want and not (want is False and not value))
        if op == "in":
            return value in want
        if op in ("<=", ">=", "<", ">"):
            if value is False or value is None:
                return False
            return {"<=": value <= want, ">=": value >= want, "<": value < want,
                    ">": value > want}[op]
        if op == "ilike":
            return str(want).lower() in str(value).lower()
        raise Fault("builtins.ValueError", f"Invalid leaf {leaf}")

    def _match(self, model: str, rec: dict[str, Any], domain: list[Any]) -> bool:
        def parse(i: int) -> tuple[bool, int]:
            item = domain[i]
            if item in ("|", "&"):
                a, i = parse(i + 1)
                b, i = parse(i)
                return (a or b if item == "|" else a and b), i
            if item == "!":
                a, i = parse(i + 1)
                return not a, i
            return self._leaf(model, rec, list(item)), i + 1

        ok, i = True, 0
        while i < len(domain):
            result, i = parse(i)
            ok = ok and result
        return ok

    def search_read(self, model: str, domain: list[Any], fields: list[str] | None = None,
                    limit: int | None = None, order: str = "", offset: int = 0
                    ) -> list[dict[str, Any]]:
        fields = fields or sorted(FIELDS[model] - {"phone_mobile_search"})
        # Odoo hides archived records unless the domain asks about `active` (active_test).
        mentions_active = any(isinstance(leaf, list) and leaf[0] == "active" for leaf in domain)
        rows = [r for r in self.tables[model].values() if self._match(model, r, domain) and
                (mentions_active or r.get("active", True))]
        by = order.split()[0] if order else "id"
        rows.sort(key=lambda r: (r.get(by) or "", r["id"]) if by != "id" else r["id"],
                  reverse=order.endswith("desc"))
        rows = rows[offset:]
        if limit:
            rows = rows[:limit]
        return [{"id": r["id"], **{f: self._value(model, r, f) for f in fields}} for r in rows]

    # ------------------------------------------------------------------ methods

    def execute(self, uid: int, model: str, method: str, args: list[Any],
                kwargs: dict[str, Any]) -> Any:
        try:
            return self._execute(uid, model, method, args, kwargs)
        except Fault as fault:
            if fault.name.startswith("builtins."):
                self.faults.append(f"{model}.{method}: {fault}")  # a traceback in Odoo's log
            raise

    def _execute(self, uid: int, model: str, method: str, args: list[Any],
                 kwargs: dict[str, Any]) -> Any:
        if model not in self.tables or (model == "voip.call" and not self.voip):
            raise Fault("builtins.KeyError", f"'{model}'")
        voip_only = {("mail.activity", "get_today_call_activities"),
                     ("res.partner", "get_contacts"), ("voip.call", "create_and_format")}
        if (model, method) in voip_only and not self.voip:
            raise Fault("builtins.AttributeError",
                        f"type object '{model}' has no attribute '{method}'")
        if method.startswith("_"):
            raise Fault("odoo.exceptions.AccessError", f"Private methods (such as {method}) "
                        f"cannot be called remotely.")
        if method == "search_read":
            domain = args[0] if args else kwargs.pop("domain", [])
            if model == "res.users" and any(leaf[0] == "id" and leaf[2] != uid and
                                            leaf[2] != [uid] for leaf in domain
                                            if isinstance(leaf, list)):
                raise Fault("odoo.exceptions.AccessError", "You are not allowed to access "
                            "'User' (res.users) records.")
            return self.search_read(model, domain, **kwargs)
        if (model, method) == ("mail.activity", "get_today_call_activities"):
            return self._today(uid)
        if (model, method) == ("res.partner", "get_contacts"):
            offset, limit, terms = args
            rows = [p for p in self.tables["res.partner"].values()
                    if (p["phone"] or p["mobile"]) and terms.lower() in p["name"].lower()]
            rows.sort(key=lambda p: p["id"])
            return [{"id": p["id"], "displayName": p["name"], "email": p["email"],
                     "landlineNumber": p["phone"] or False, "mobileNumber": p["mobile"] or False,
                     "name": p["name"]} for p in rows[offset:offset + limit]]
        if model == "mail.activity" and method in ("action_feedback", "unlink"):
            ids = args[0]
            for aid in ids:
                if aid not in self.tables["mail.activity"]:
                    raise Fault("odoo.exceptions.MissingError", "Record does not exist or has "
                                f"been deleted.\n(Record: mail.activity({aid},), User: {uid})")
            for aid in ids:
                del self.tables["mail.activity"][aid]
            self.writes.append((model, method, copy.deepcopy(args), copy.deepcopy(kwargs)))
            return 4242 if method == "action_feedback" else True
        if model == "voip.call":
            return self._voip_call(uid, method, args, kwargs)
        if method == "message_post" and model in CHATTER:
            [res_id] = args[0] if isinstance(args[0], list) else [args[0]]
            if res_id not in self.tables[model]:
                raise Fault("odoo.exceptions.MissingError", "Record does not exist or has "
                            f"been deleted.\n(Record: {model}({res_id},), User: {uid})")
            mid = next(self.next_id)
            body = html.escape(str(kwargs.get("body", "")))  # Odoo escapes a str body
            self.tables["mail.message"][mid] = {
                "id": mid, "model": model, "res_id": res_id, "body": f"<p>{body}</p>",
                "message_type": kwargs.get("message_type", "notification"),
                "subtype_xmlid": kwargs.get("subtype_xmlid", ""), "author_id": uid}
            self.writes.append((model, method, copy.deepcopy(args), copy.deepcopy(kwargs)))
            return mid
        raise Fault("builtins.AttributeError",
                    f"type object '{model}' has no attribute '{method}'")

    def _today(self, uid: int) -> Any:
        out = []
        for a in sorted(self.tables["mail.activity"].values(), key=lambda a: a["id"]):
            kind = self.tables["mail.activity.type"][a["activity_type_id"]]["category"]
            if kind != "phonecall" or a["user_id"] != uid or \
                    a["date_deadline"] > self.today.isoformat():
                continue
            rec = self.tables[a["res_model"]][a["res_id"]]
            partner = rec if a["res_model"] == "res.partner" else \
                self.tables["res.partner"].get(rec.get("partner_id") or 0)
            phone = rec.get("phone") or (partner or {}).get("phone") or False
            mobile = rec.get("mobile") or (partner or {}).get("mobile") or False
            if not phone and not mobile:
                continue
            row = {"id": a["id"], "res_name": a["res_name"], "phone": phone, "mobile": mobile,
                   "res_id": a["res_id"], "res_model": a["res_model"],
                   "state": self._value("mail.activity", a, "state"),
                   "activity_category": "phonecall", "modelName": a["res_model"],
                   "user_id": [uid, self.tables["res.users"][uid]["name"]]}
            if partner:
                row["partner"] = {"id": partner["id"], "name": partner["name"],
                                  "email": partner["email"]}
            out.append(row)
        if not self.store_shape:
            return out
        partners = {}
        for row in out:
            p = row.pop("partner", None)
            # Odoo 18 folds mobile into phone (later builds drop the mobile field).
            row["phone"] = row["phone"] or row.pop("mobile", False)
            row.pop("mobile", None)
            if p:
                row["partner"] = {"id": p["id"]}
                partners[p["id"]] = p
        return {"Activity": out, "res.partner": list(partners.values())}

    def _voip_call(self, uid: int, method: str, args: list[Any], kwargs: dict[str, Any]
                   ) -> Any:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        self.writes.append(("voip.call", method, copy.deepcopy(args), copy.deepcopy(kwargs)))
        table = self.tables["voip.call"]
        if method == "create_and_format":
            cid = next(self.next_id)
            vals = {k: v for k, v in kwargs.items() if k not in ("res_id", "res_model")}
            if not vals.get("phone_number"):
                raise Fault("odoo.exceptions.ValidationError", "phone_number is required")
            table[cid] = {"id": cid, "state": "calling", "start_date": False,
                          "end_date": False, "activity_name": False, "partner_id": False,
                          **vals, "user_id": uid, "create_date": now}
            return [{"id": cid, "phoneNumber": vals["phone_number"], "state": "calling"}]
        ids = args[0] if args else []
        for cid in ids:
            if cid not in table:
                raise Fault("odoo.exceptions.MissingError", "Record does not exist or has been "
                            f"deleted.\n(Record: voip.call({cid},), User: {uid})")
        for cid in ids:
            call = table[cid]
            if method == "start_call":
                call.update(state="ongoing", start_date=now)
            elif method == "end_call":
                call.update(state="terminated", end_date=now)
                if kwargs.get("activity_name"):
                    call["activity_name"] = kwargs["activity_name"]
            elif method in ("abort_call", "reject_call", "miss_call"):
                call.update(state={"abort_call": "aborted", "reject_call": "rejected",
                                   "miss_call": "missed"}[method], end_date=now)
            elif method == "write":
                call.update(args[1])
            else:
                raise Fault("builtins.AttributeError",
                            f"type object 'voip.call' has no attribute '{method}'")
        return True

    # ------------------------------------------------------------------ JSON-RPC

    def dispatch(self, body: dict[str, Any]) -> Any:
        params = body.get("params") or {}
        service, method, args = params.get("service"), params.get("method"), params.get("args")
        if service == "common" and method == "version":
            version = "17.0+e" if self.voip else "17.0"
            return {"server_version": version, "server_version_info": [17, 0, 0, "final", 0,
                    "e" if self.voip else ""], "server_serie": "17.0", "protocol_version": 1}
        if service == "common" and method == "authenticate":
            db, login, key = args[0], args[1], args[2]
            self._database(db)
            uid = LOGINS.get(login)
            return uid if uid is not None and self.keys.get(uid) == key else False
        if service == "object" and method == "execute_kw":
            db, uid, key, model, meth = args[:5]
            margs = args[5] if len(args) > 5 else []
            mkwargs = args[6] if len(args) > 6 else {}
            self._database(db)
            if uid not in self.keys:
                raise Fault("odoo.exceptions.MissingError", "Record does not exist or has "
                            "been deleted.")
            if self.keys[uid] != key:
                raise Fault("odoo.exceptions.AccessDenied", "Access Denied")
            self.calls.append((model, meth, copy.deepcopy(margs), copy.deepcopy(mkwargs)))
            return self.execute(uid, model, meth, margs, mkwargs)
        raise Fault("builtins.AttributeError", f"no such service method {service}.{method}")

    def _database(self, db: str) -> None:
        if db != DATABASE:
            raise Fault("psycopg2.OperationalError",
                        f'connection to server failed: FATAL:  database "{db}" does not exist')

    def handle(self, raw: bytes) -> tuple[int, str, bytes]:
        status, kind, body = self._handle(raw)
        self.bytes += len(raw) + len(body)  # request and answer bodies (HTTP headers aside)
        return status, kind, body

    def _handle(self, raw: bytes) -> tuple[int, str, bytes]:
        self.round_trips += 1
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            return 502, "text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        if self.malformed:
            return 200, "text/html", b"<!DOCTYPE html><html>Odoo is starting...</html>"
        try:
            body = json.loads(raw)
        except ValueError:
            return 200, "application/json", json.dumps({
                "jsonrpc": "2.0", "id": None, "error": {"code": -32700,
                                                        "message": "Parse error"}}).encode()
        try:
            with self.lock:
                result = self.dispatch(body)
            doc = {"jsonrpc": "2.0", "id": body.get("id"), "result": result}
        except Fault as fault:
            doc = {"jsonrpc": "2.0", "id": body.get("id"), "error": {
                "code": 200, "message": "Odoo Server Error",
                "data": {"name": fault.name, "debug": "Traceback ...", "message": str(fault),
                         "arguments": [str(fault)], "context": {}}}}
        return 200, "application/json", json.dumps(doc).encode()

    # ------------------------------------------------------------------ server

    def start(self) -> OdooDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/jsonrpc":
                    self.send_error(404)
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, kind, body = double.handle(raw)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="odoo-double",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: the phone sees connection refused (start() again on the same port)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def main() -> None:
    parser = argparse.ArgumentParser(description="An Odoo 17 JSON-RPC test double")
    parser.add_argument("--port", type=int, default=8069)
    parser.add_argument("--no-voip", action="store_true")
    args = parser.parse_args()
    double = OdooDouble(voip=not args.no_voip, port=args.port,
                        today=dt.date.today()).start()
    print(f"Odoo double on {double.url}, database {DATABASE!r}, login alice@example.com, "
          f"API key {KEYS[ALICE]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        double.stop()


if __name__ == "__main__":
    main()
