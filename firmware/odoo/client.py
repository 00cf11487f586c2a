"""Odoo's external JSON-RPC API (`POST /jsonrpc`), with its errors sorted by what to do about them.

Owns: the HTTP session, timeouts, the request ids, counting round trips, and turning every
failure into one of the exceptions below. Never touches: the phone's state, the store or the
queue's meaning (sync.py decides what to ask and what an answer means). The API key is sent in
the request body only and never appears in an exception or a log line.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import requests

log = logging.getLogger("odoo")


class OdooError(Exception):
    """Odoo answered with an error that retrying the same call will not fix (UserError,
    ValidationError, an unknown field ...). `name` is the exception's dotted name."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class OdooDown(OdooError):
    """No usable answer: connection refused, timeout, 5xx, or a body that is not JSON-RPC.
    Serve from the cache and retry with backoff."""


class OdooDenied(OdooError):
    """Wrong login or API key, or a key that was revoked (AccessDenied)."""


class OdooNoDatabase(OdooError):
    """The database named in the config does not exist on that server."""


class OdooRights(OdooError):
    """The user may not do this (AccessError): an admin must grant the rights."""


class OdooMissing(OdooError):
    """The record is gone (MissingError): for a retried write, it was already applied."""


class OdooNoMethod(OdooError):
    """The method does not exist (AttributeError): the module that adds it is not installed."""


def _classify(error: dict[str, Any]) -> OdooError:
    data = error.get("data") or {}
    name = str(data.get("name") or "")
    message = str(data.get("message") or error.get("message") or "Odoo error").strip()
    short = message.splitlines()[0] if message else name
    if name.endswith("AccessDenied"):
        return OdooDenied(short, name)
    if name.endswith("AccessError"):
        return OdooRights(short, name)
    if name.endswith("MissingError"):
        return OdooMissing(short, name)
    if name == "builtins.AttributeError":
        return OdooNoMethod(short, name)
    if "OperationalError" in name or (name == "builtins.KeyError" and "res.users" in message):
        return OdooNoDatabase(short, name)
    return OdooError(short, name)


class OdooClient:
    """One Odoo server and user. Not thread-safe: the sync thread owns it."""

    def __init__(self, url: str, database: str, login: str, api_key: str,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.login = login
        self._key = api_key
        self.timeout = timeout
        self.uid: int | None = None
        self.round_trips = 0
        self._ids = itertools.count(1)
        self._http = requests.Session()
        self._http.headers["User-Agent"] = "deskphone"

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:  # never the key
        return f"OdooClient({self.url!r}, {self.database!r}, {self.login!r})"

    # ------------------------------------------------------------------ transport

    def rpc(self, service: str, method: str, *args: Any, timeout: float | None = None) -> Any:
        body = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                "params": {"service": service, "method": method, "args": list(args)}}
        self.round_trips += 1
        try:
            reply = self._http.post(f"{self.url}/jsonrpc", json=body,
                                    timeout=timeout or self.timeout)
        except requests.Timeout as exc:
            raise OdooDown(f"no answer from {self.url} within {timeout or self.timeout:g} s"
                           ) from exc
        except requests.ConnectionError as exc:
            raise OdooDown(f"cannot connect to {self.url}: {_cause(exc)}") from exc
        except requests.RequestException as exc:
            raise OdooDown(f"{self.url}: {type(exc).__name__}") from exc
        if reply.status_code >= 500 or reply.status_code in (404, 502, 503, 504):
            raise OdooDown(f"{self.url} answered HTTP {reply.status_code}")
        try:
            doc = reply.json()
        except ValueError as exc:
            raise OdooDown(f"{self.url} answered HTTP {reply.status_code} with something that "
                           f"is not JSON (a proxy or a login page?)") from exc
        if not isinstance(doc, dict) or ("result" not in doc and "error" not in doc):
            raise OdooDown(f"{self.url} answered JSON that is not JSON-RPC")
        if "error" in doc:
            raise _classify(doc["error"] if isinstance(doc["error"], dict) else {})
        return doc["result"]

    # ------------------------------------------------------------------ API

    def version(self) -> dict[str, Any]:
        result = self.rpc("common", "version")
        if not isinstance(result, dict):
            raise OdooDown("common.version answered something that is not a version")
        return result

    def authenticate(self) -> int:
        uid = self.rpc("common", "authenticate", self.database, self.login, self._key, {})
        if not uid:
            self.uid = None
            raise OdooDenied(f"Odoo refused login {self.login!r} with this API key", "false")
        self.uid = int(uid)
        return self.uid

    def call(self, model: str, method: str, *args: Any, timeout: float | None = None,
             **kwargs: Any) -> Any:
        """`object.execute_kw` as the authenticated user."""
        if self.uid is None:
            self.authenticate()
        assert self.uid is not None
        try:
            return self.rpc("object", "execute_kw", self.database, self.uid, self._key, model,
                            method, list(args), kwargs, timeout=timeout)
        except OdooDenied:
            self.uid = None  # the key was revoked: authenticate again next time
            raise


def _cause(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "No route to host",
                   "Temporary failure in name resolution", "Network is unreachable",
                   "certificate verify failed", "Connection reset"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
