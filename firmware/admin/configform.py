"""The configuration form of the web page: one box per setting, checked like `check-config`.

Owns: the form's fields (from the schema in config.py: every section, key, type and help), the
value each box shows (the layers merged: the file, provisioning, earlier web edits) and where it
comes from, turning a posted form into the web page's layer, and checking the whole result with
`config.parse` before anything is written. Never touches: HTML (pages.py), HTTP (server.py) or
the phone; writing the layer is `apply()`, which the server calls only when nothing is wrong.

Rules a person can predict: a box left as shown changes nothing; a changed box goes into the web
page's layer (the file on the SD card is never rewritten); an emptied box takes its value out of
that layer (the file's value or the default comes back); a password box is always shown empty
and only a typed one replaces the secret.
"""

from __future__ import annotations

import re
import typing
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from firmware import config as configuration
from firmware import layers


@dataclass(frozen=True)
class Field:
    section: str
    key: str
    kind: type  # str, int, float, bool or list
    secret: bool
    help: str
    choices: tuple[str, ...]
    default: Any

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


@dataclass(frozen=True)
class Row:
    """One box as the page draws it."""

    field: Field
    text: str  # what the box holds ("" for a secret)
    source: str  # "file", "provisioning", "web page", "default"
    problems: tuple[str, ...] = ()
    secret_set: bool = False


def schema() -> list[Field]:
    out = []
    for section in configuration.SECTIONS:
        hints = typing.get_type_hints(section.schema)
        for f in fields(section.schema):
            rule = configuration.rule_of(f)
            kinds, secret = configuration._kinds(hints[f.name])
            default = None if f.default is MISSING else f.default
            out.append(Field(section.name, f.name, kinds[0], secret, rule.help, rule.choices,
                             default))
    return out


def text_of(value: Any) -> str:
    """A value as a box shows it: strings bare, lists comma-separated, true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(text_of(v) for v in value)
    return str(value)


def value_of(f: Field, text: str) -> Any:
    """A box's text as the TOML value it stands for. Text that is not of the field's type stays
    text, so the check names the problem ("must be an integer, not str") beside the box."""
    text = text.strip()
    if f.kind is bool:
        return {"true": True, "false": False}.get(text.lower(), text)
    if f.kind is int:
        number = text.lower()
        if re.fullmatch(r"[+-]?\d+", number):
            return int(number)
        if re.fullmatch(r"0x[0-9a-f]+", number):
            return int(number, 16)
        return text
    if f.kind is float:
        try:
            return float(text)
        except ValueError:
            return text
    if f.kind is list:
        items = [item.strip() for item in text.split(",") if item.strip()]
        return [int(i) if re.fullmatch(r"[+-]?\d+", i) else i for i in items]
    return text


class ConfigForm:
    """The form for one config file and its layers."""

    def __init__(self, path: Path, state_dir: Path) -> None:
        self.path = path
        self.state_dir = state_dir
        self.web_path = state_dir / layers.WEB

    def _stack(self) -> tuple[dict[str, Any], list[tuple[str, layers.Doc]], layers.Doc]:
        base = configuration.read_raw(self.path)
        below: list[tuple[str, layers.Doc]] = []
        web: layers.Doc = {}
        for name, layer in layers.paths(self.state_dir):
            try:
                doc = layers.read(layer)
            except layers.LayerError:
                doc = {}  # load() already says so; an edit writes a good one over it
            if layer == self.web_path:
                web = doc
            else:
                below.append((name, doc))
        return base, below, web

    def rows(self, posted: dict[str, str] | None = None,
             problems: list[str] | None = None) -> list[Row]:
        """Every box with its value and source; after a refused post, what was typed and the
        problems beside their boxes."""
        base, below, web = self._stack()
        merged = layers.merge(base, *(doc for _, doc in below), web)
        where = layers.sources(base, [*below, ("web page", web)])
        by_field = _problems_by_field(problems or [])
        out = []
        for f in schema():
            section = merged.get(f.section, {})
            key = f.key if f.key in section or not f.secret else f"{f.key}_file"
            if f.secret:
                # A secret's file is shown by name; a secret itself never, not even one just
                # typed into a form that was refused (it is typed again).
                shown = section.get(f"{f.key}_file", "")
                out.append(Row(f, text_of(shown) if f"{f.key}_file" in section else "",
                               where.get(f"{f.section}.{key}", "default"),
                               tuple(by_field.pop(f.name, ())),
                               secret_set=f.key in section or f"{f.key}_file" in section))
                continue
            text = posted[f.name] if posted is not None and f.name in posted else \
                text_of(section.get(f.key))
            out.append(Row(f, text, where.get(f"{f.section}.{f.key}", "default"),
                           tuple(by_field.pop(f.name, ()))))
        return out

    def edit(self, posted: dict[str, str]) -> tuple[layers.Doc, list[str]]:
        """The web layer a post makes, and every problem of the config it would give (empty:
        it can be applied). Nothing is written here."""
        base, below, web = self._stack()
        merged_below = layers.merge(base, *(doc for _, doc in below))
        current = layers.merge(merged_below, web)
        new: layers.Doc = {s: dict(v) for s, v in web.items()}
        for f in schema():
            if f.name not in posted:
                continue
            typed = posted[f.name]
            section = current.get(f.section, {})
            if f.secret:
                if f"{f.key}_file" in section and typed.strip() == text_of(
                        section[f"{f.key}_file"]):
                    continue
                if not typed:
                    continue  # a password box left empty keeps the secret
                if f"{f.key}_file" in section and typed.startswith("/"):
                    new.setdefault(f.section, {})[f"{f.key}_file"] = typed.strip()
                    new[f.section].pop(f.key, None)
                else:
                    new.setdefault(f.section, {})[f.key] = typed
                    new[f.section].pop(f"{f.key}_file", None)
                continue
            if typed.strip() == text_of(section.get(f.key)):
                continue
            if not typed.strip():
                new.get(f.section, {}).pop(f.key, None)
                continue
            new.setdefault(f.section, {})[f.key] = value_of(f, typed)
        new = {s: v for s, v in new.items() if v}
        try:
            configuration.parse(layers.merge(merged_below, new), base=self.path.parent,
                                path=str(self.path))
        except configuration.ConfigError as exc:
            return new, exc.problems
        return new, []

    def apply(self, layer: layers.Doc) -> None:
        """Write the web layer (atomically; the previous one kept)."""
        layers.write(self.web_path, "# Settings changed on the phone's web page; they win over "
                     f"{self.path} and provisioning.\n" + layers.dump(layer))

    def web_layer(self) -> layers.Doc:
        try:
            return layers.read(self.web_path)
        except layers.LayerError:
            return {}

    def can_undo(self) -> bool:
        return self.web_path.with_name(self.web_path.name + layers.PREVIOUS).exists()

    def undo(self) -> bool:
        """The web layer as it was before the last apply."""
        return layers.restore_previous(self.web_path)


def _problems_by_field(problems: list[str]) -> dict[str, list[str]]:
    """"sip.password_file: ..." -> {"sip.password": [...]}: each problem beside its box; the
    rest under "" (shown above the form)."""
    names = {f.name for f in schema()}
    out: dict[str, list[str]] = {}
    for problem in problems:
        where, _, message = problem.partition(": ")
        if where.endswith("_file") and where[:-5] in names:
            where = where[:-5]
        if where in names:
            out.setdefault(where, []).append(message)
        else:
            out.setdefault("", []).append(problem)
    return out


def loose_problems(problems: list[str]) -> list[str]:
    """The problems that belong to no box (a section, the file itself)."""
    return _problems_by_field(problems).get("", [])
