"""The layout stays true: no import cycle between modules; the rooms of serving/ (and
the stages) import only downwards (the import-linter contracts in pyproject.toml, which
`make lint` also runs); the README's "Where things are" map lists every package; and
every serving room's docstring says what it may import."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("radar", "features", "training", "serving")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle_between_modules():
    cycles = _cycles(grimp.build_graph(*PACKAGES))
    assert cycles == [], f"import cycles (function-level imports count too): {cycles}"


def test_a_cycle_is_found_when_there_is_one(tmp_path, monkeypatch):
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("def f():\n    from loopy import a\n")
    (pkg / "c.py").write_text("from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("loopy", cache_dir=None)) == [["loopy.a", "loopy.b"]]


def test_import_contracts_hold():
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _readme_map() -> list[str]:
    """The paths the README's "Where things are" map describes: the backquoted paths that
    open each of its list items (`- `a/`, `b.py`: ...`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Where things are\n" in readme, "the README has no 'Where things are' section"
    section = readme.split("\n## Where things are\n", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in section.splitlines():
        head = re.match(r"\s*- ((?:`[^`]+`(?:, )?)+):", line)
        if head:
            paths += re.findall(r"`([^`]+)`", head.group(1))
    return paths


def _tracked_top_folders() -> set[str]:
    """Top-level folders holding committed files (hidden ones aside); empty outside a git checkout."""
    try:
        done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    except OSError:
        return set()
    if done.returncode != 0:
        return set()
    return {
        f"{line.split('/', 1)[0]}/" for line in done.stdout.splitlines() if "/" in line and not line.startswith(".")
    }


def test_the_readme_map_lists_every_package_and_nothing_that_is_gone():
    listed = _readme_map()
    assert listed, "the README's 'Where things are' section lists no paths"
    gone = [p for p in listed if not (ROOT / p).exists()]
    assert gone == [], f"the README map names paths that do not exist: {gone}"
    packages = {
        f"{init.parent.relative_to(ROOT).as_posix()}/" for pkg in PACKAGES for init in (ROOT / pkg).rglob("__init__.py")
    }
    assert {f"{pkg}/" for pkg in PACKAGES} <= packages
    unlisted = sorted((packages | _tracked_top_folders()) - set(listed))
    assert unlisted == [], f"add these to the README's 'Where things are' map: {unlisted}"


def _serving_rooms() -> list[str]:
    """The rooms of serving/, lowest first, from the layers contract in pyproject.toml."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (layers,) = [c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return [layer for layer in reversed(layers) if "|" not in layer]


def test_every_serving_room_is_a_layer_and_its_docstring_says_what_it_may_import():
    rooms = _serving_rooms()
    folders = sorted(f"serving.{init.parent.name}" for init in (ROOT / "serving").glob("*/__init__.py"))
    assert sorted(rooms) == folders, "every sub-package of serving/ is a room of the layers contract"
    named = lambda text: set(re.findall(r"serving\.\w+", text))
    for i, room in enumerate(rooms):
        below, above = set(rooms[:i]), set(rooms[i + 1 :])
        init = ROOT / room.replace(".", "/") / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
        says = re.search(r"May\s+import\s+(.*?)(?:;\s+never\s+(.*?))?\.(?:\s|$)", doc, re.S)
        assert says, f"{room}: its docstring should say 'May import ...; never ...'"
        allowed, never = says.group(1), says.group(2) or ""
        assert named(allowed) == below, f"{room} may import exactly the rooms below it: {sorted(below)}"
        assert above <= named(never) and not named(never) & below, f"{room} names the rooms above it as never"
