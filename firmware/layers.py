"""The config's layers: the file on the SD card, then what provisioning fetched, then what the
web page changed, each a TOML document merged key by key over the one below.

Owns: where the two upper layers live (the state directory, which the service may write: the
unit's `ProtectSystem=strict` keeps /etc read-only to it), merging documents, writing a layer
atomically with the previous one kept beside it, and the small TOML writer that needs. Never
touches: what a key means or whether a value is valid (config.py checks the merged document) or
the network (provisioning.py fetches).
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

PROVISIONED = "provisioned.toml"  # the last good merge of <url>/default.toml and <url>/<mac>.toml
WEB = "web.toml"  # what the web page's configuration form changed
PREVIOUS = ".previous"  # beside each: the layer as it was before the last write
LAYERS = (("provisioning", PROVISIONED), ("web page", WEB))

Doc = dict[str, dict[str, Any]]


class LayerError(Exception):
    """A stored layer cannot be read (not TOML, not tables of values)."""


def paths(state_dir: Path) -> list[tuple[str, Path]]:
    """(name, path) of the upper layers, lowest first."""
    return [(name, state_dir / file) for name, file in LAYERS]


def read(path: Path) -> Doc:
    """A layer's document; {} when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LayerError(f"{path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayerError(f"{path}: {exc}") from None
    return tables(doc, str(path))


def tables(doc: dict[str, Any], where: str) -> Doc:
    """`doc` if it is sections of plain values; LayerError otherwise (a layer never holds a
    nested table, which config.py would refuse anyway, so a merge never has to descend)."""
    for name, section in doc.items():
        if not isinstance(section, dict):
            raise LayerError(f"{where}: {name} must be a table ([{name}])")
        for key, value in section.items():
            if isinstance(value, dict):
                raise LayerError(f"{where}: {name}.{key} must be a value, not a table")
    return doc


def merge(*docs: Doc) -> Doc:
    """The documents merged key by key, later ones winning. A secret given inline above one
    given as a file (or the reverse) replaces it: `password` drops a lower `password_file`."""
    out: Doc = {}
    for doc in docs:
        for name, section in doc.items():
            merged = dict(out.get(name, {}))
            for key, value in section.items():
                twin = key[:-5] if key.endswith("_file") else f"{key}_file"
                if twin not in section:  # both in one document: config.py says so
                    merged.pop(twin, None)
                merged[key] = value
            out[name] = merged
    return out


def sources(base: Doc, layers: list[tuple[str, Doc]]) -> dict[str, str]:
    """"section.key" -> the name of the layer its value comes from ("file" for the base)."""
    found = {f"{s}.{k}": "file" for s, section in base.items() for k in section}
    for name, doc in layers:
        for s, section in doc.items():
            for k in section:
                twin = k[:-5] if k.endswith("_file") else f"{k}_file"
                found.pop(f"{s}.{twin}", None)
                found[f"{s}.{k}"] = name
    return found


def dump(doc: Doc) -> str:
    """TOML text of a layer (sections of strings, numbers, booleans and lists of them)."""
    out = []
    for name, section in doc.items():
        if not section:
            continue
        out.append(f"[{name}]")
        out += [f"{key} = {value_text(value)}" for key, value in section.items()]
        out.append("")
    return "\n".join(out)


def value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def write(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (a power cut leaves the old or the new file, never
    half of one); the old one is kept as `<path>.previous`. Mode 600: a layer may hold secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".new", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        if path.exists():
            os.replace(path, path.with_name(path.name + PREVIOUS))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def restore_previous(path: Path) -> bool:
    """Put `<path>.previous` back in place of `path` (the two swap); False when there is none."""
    previous = path.with_name(path.name + PREVIOUS)
    if not previous.exists():
        return False
    swap = path.with_name(path.name + ".swap")
    if path.exists():
        os.replace(path, swap)
    os.replace(previous, path)
    if swap.exists():
        os.replace(swap, previous)
    _sync_dir(path.parent)
    return True


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
