"""The floors of the house (docs/architecture.md), read from the source with `ast`.

The ground (events, frame, pcm, numbers, config, layers) imports nothing above it; the adapters
(hw/, sip/, odoo/, network, control) stand on the ground and never on the daemon; the daemon
stands on the adapters' contract; the CLI is on top. A rule broken here is a newcomer lost later.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "firmware"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, package: str, *, typing_only: bool) -> set[str]:
    """Every firmware module a module imports, at any depth (functions too); `typing_only`
    says whether imports under `if TYPE_CHECKING:` count."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not typing_only:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("firmware"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if base.startswith("firmware"):
                for alias in node.names:
                    # `from firmware import numbers` names a module; `from x import Name` not.
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


MODULES = {_module_name(p) for p in ROOT.rglob("*.py")}
TREES = {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in ROOT.rglob("*.py")}


def _graph(*, typing_only: bool) -> dict[str, set[str]]:
    graph = {}
    for name, tree in TREES.items():
        package = name if name.endswith("__init__") else name.rpartition(".")[0]
        graph[name] = {m for m in _imports(tree, package, typing_only=typing_only)
                       if m in MODULES and m != name}
    return graph


def test_no_import_circle_in_the_firmware() -> None:
    graph = _graph(typing_only=False)
    circles: list[list[str]] = []

    def walk(node: str, path: list[str], seen: set[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                circles.append([*path[path.index(nxt):], nxt])
            elif nxt not in seen:
                seen.add(nxt)
                walk(nxt, [*path, nxt], seen)

    for start in sorted(graph):
        walk(start, [start], {start})
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_adapters_never_import_the_shell() -> None:
    graph = _graph(typing_only=True)
    offenders = {name: sorted(deps & {"firmware.daemon", "firmware.app", "firmware.cli"})
                 for name, deps in graph.items()
                 if name.startswith(("firmware.hw", "firmware.sip", "firmware.odoo",
                                     "firmware.admin"))
                 or name in ("firmware.network", "firmware.control")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_hardware_does_not_import_sip() -> None:
    graph = _graph(typing_only=True)
    offenders = {name: sorted(d for d in deps if d.startswith("firmware.sip"))
                 for name, deps in graph.items() if name.startswith("firmware.hw")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_a_sip_call_never_imports_the_user_agent() -> None:
    """baresip's split: a call is given identity, transport and callbacks; the registration
    client knows no calls; only the user agent knows both."""
    graph = _graph(typing_only=True)
    assert graph["firmware.sip.call"] & {"firmware.sip.ua", "firmware.sip.registration"} == set()
    assert graph["firmware.sip.registration"] & {"firmware.sip.ua", "firmware.sip.call"} == set()


def test_the_ground_floor_imports_nothing_above_it() -> None:
    ground = {"firmware.events", "firmware.frame", "firmware.pcm", "firmware.numbers",
              "firmware.config", "firmware.layers", "firmware"}
    graph = _graph(typing_only=False)
    above = {name: sorted(graph[name] - ground) for name in ground if name in graph}
    assert {k: v for k, v in above.items() if v} == {}


def test_a_driver_loads_neither_the_phone_nor_the_screens() -> None:
    """What a keypad driver (or SIP, or Odoo) costs at import: not the Phone, not PIL."""
    code = (
        "import sys\n"
        "import firmware.hw.keypad, firmware.hw.hook, firmware.hw.lamps, firmware.network\n"
        "import firmware.sip.ua, firmware.odoo.sync\n"
        "heavy = ['firmware.daemon', 'firmware.phone', 'firmware.ui.screens', 'PIL.Image']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT.parent)
    assert out.stdout.strip() == ""
