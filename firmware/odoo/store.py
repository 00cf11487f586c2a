"""The phone's local store: the durable outbox of writes to Odoo, the cached queue and contacts,
and the call history (Recent).

Owns: one SQLite file in the state directory (`odoo.sqlite`). Every write to Odoo is committed
here before it is sent and deleted only once Odoo has acknowledged it, so it survives outages,
reboots and `kill -9`. Never touches: the network (sync.py sends) or the phone's state.

Durability: WAL journal with `synchronous=FULL`, so a committed write survives a power cut.
Each thread gets its own connection (SQLite's rule); the loop thread only appends.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL,            -- what to do in Odoo (sync.py's OPS)
    args TEXT NOT NULL,          -- JSON
    call_uid TEXT,               -- the call a call-log step belongs to
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | sending (outcome unknown) | parked
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    call_uid TEXT PRIMARY KEY,
    remote_id INTEGER            -- voip.call id once Odoo made it
);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    call_uid TEXT PRIMARY KEY,
    record TEXT NOT NULL,
    updated REAL NOT NULL
);
"""

HISTORY_KEEP = 100


@dataclass(frozen=True)
class Op:
    id: int
    op: str
    args: dict[str, Any]
    call_uid: str | None
    state: str
    attempts: int
    next_at: float
    error: str
    created: float


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._db().executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # One connection per thread; each is used only by its thread, but close() may
            # close them all from whichever thread stops the phone.
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        """Close every thread's connection (a thread that comes back gets a new one)."""
        with self._lock:
            connections, self._all = self._all, []
        for db in connections:
            db.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ outbox

    def add(self, op: str, args: dict[str, Any], call_uid: str | None = None) -> int:
        db = self._db()
        cur = db.execute("INSERT INTO outbox (op, args, call_uid, created) VALUES (?, ?, ?, ?)",
                         (op, json.dumps(args), call_uid, time.time()))
        return int(cur.lastrowid or 0)

    def pending(self) -> list[Op]:
        rows = self._db().execute(
            "SELECT id, op, args, call_uid, state, attempts, next_at, error, created "
            "FROM outbox ORDER BY id").fetchall()
        return [Op(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7], r[8])
                for r in rows]

    def depth(self) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def mark(self, op_id: int, state: str, *, next_at: float = 0.0, error: str = "",
             attempt: bool = False) -> None:
        self._db().execute(
            "UPDATE outbox SET state = ?, next_at = ?, error = ?, attempts = attempts + ? "
            "WHERE id = ?", (state, next_at, error, 1 if attempt else 0, op_id))

    def done(self, op_id: int, call_uid: str | None = None, remote_id: int | None = None
             ) -> None:
        """Odoo acknowledged the op: forget it (and remember the voip.call it made) at once."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            if call_uid is not None and remote_id is not None:
                db.execute("INSERT OR REPLACE INTO calls (call_uid, remote_id) VALUES (?, ?)",
                           (call_uid, remote_id))
            db.execute("DELETE FROM outbox WHERE id = ?", (op_id,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def remote_id(self, call_uid: str) -> int | None:
        row = self._db().execute("SELECT remote_id FROM calls WHERE call_uid = ?",
                                 (call_uid,)).fetchone()
        return None if row is None else row[0]

    def known_remote_ids(self) -> set[int]:
        return {r[0] for r in self._db().execute(
            "SELECT remote_id FROM calls WHERE remote_id IS NOT NULL")}

    def has_call(self, call_uid: str) -> bool:
        db = self._db()
        if db.execute("SELECT 1 FROM calls WHERE call_uid = ?", (call_uid,)).fetchone():
            return True
        return db.execute("SELECT 1 FROM outbox WHERE call_uid = ? AND op = 'call.create'",
                          (call_uid,)).fetchone() is not None

    def pending_activity_ids(self) -> set[int]:
        """Activities the phone has marked done or removed but Odoo has not heard of yet."""
        return {int(op.args["activity_id"]) for op in self.pending()
                if op.op in ("activity.done", "activity.remove")}

    # ------------------------------------------------------------------ cache and history

    def put(self, key: str, value: Any) -> None:
        self._db().execute("INSERT OR REPLACE INTO cache (key, value, updated) VALUES (?, ?, ?)",
                           (key, json.dumps(value), time.time()))

    def get(self, key: str, default: Any = None) -> Any:
        row = self._db().execute("SELECT value FROM cache WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def remember_call(self, call_uid: str, record: dict[str, Any]) -> None:
        db = self._db()
        db.execute("INSERT OR REPLACE INTO history (call_uid, record, updated) VALUES (?, ?, ?)",
                   (call_uid, json.dumps(record), time.time()))
        db.execute("DELETE FROM history WHERE call_uid NOT IN (SELECT call_uid FROM history "
                   "ORDER BY updated DESC LIMIT ?)", (HISTORY_KEEP,))

    def recalled(self, call_uid: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT record FROM history WHERE call_uid = ?",
                                 (call_uid,)).fetchone()
        return json.loads(row[0]) if row else None

    def history(self) -> list[dict[str, Any]]:
        return [json.loads(r[0]) for r in self._db().execute(
            "SELECT record FROM history ORDER BY updated DESC")]
