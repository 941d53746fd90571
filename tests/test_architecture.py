"""The shape of the package, checked from its source: no import cycle among the modules of `moderation/`.

Both graphs are enforced: the module-level imports (what runs when a module is imported) and every import including
those inside functions (which run later, but still tie two modules into one that cannot be understood or changed
apart). An import of `moderation.a.b` also runs `moderation/a/__init__.py`, so it counts as an arrow to the package
`moderation.a` too (unless the importer is inside that package, which is then loading already).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "moderation"


def _module_name(path: Path) -> str:
    parts = ["moderation", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The project modules an import statement in `module` loads (absolute names)."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        if node.level:
            package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    loaded = set()
    for name in names:
        parts = name.split(".")
        for end in range(2, len(parts) + 1):  # the package chain below `moderation` itself, then the module
            prefix = ".".join(parts[:end])
            if prefix in MODULES and not (module + ".").startswith(prefix + "."):
                loaded.add(prefix)
    loaded.discard(module)
    return loaded


def import_graph(module_level_only: bool) -> dict[str, set[str]]:
    """module -> the project modules it imports (only at module level, or anywhere in it)."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        nested = {id(node) for top in tree.body
                  if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  for node in ast.walk(top)} if module_level_only else set()
        graph[module] = set().union(*(_imported(module, node) for node in ast.walk(tree)
                                      if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in nested))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None when it has none (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_function_level_and_package_imports():
    everything, top = import_graph(module_level_only=False), import_graph(module_level_only=True)
    assert "moderation.text.cache" in top["moderation.text.registry"]  # `from .cache import ...`
    assert {"moderation.text", "moderation.text.registry"} <= top["moderation.evaluation.bundled"]  # `..text.registry`
    assert "moderation.evaluation.figures" in everything["moderation.app_support"]  # inside a function...
    assert "moderation.evaluation.figures" not in top["moderation.app_support"]  # ...so not at module level
    assert "moderation.text" not in top["moderation.text.registry"]  # its own package is loading already


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level imports", "all imports"])
def test_no_import_cycle_among_project_modules(module_level_only):
    cycle = find_cycle(import_graph(module_level_only))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# --- README "Where things live" matches the tree --------------------------------------------------------------------

ROOT = PACKAGE.parent


def _rooms() -> dict[str, str]:
    """README's "Where things live": path -> the rest of its line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Where things live\n", 1)[1].split("\n## ", 1)[0]
    rooms = {}
    for line in section.splitlines():
        if line.startswith("- `"):
            path, rest = line[3:].split("`", 1)
            rooms[path] = rest
    return rooms


def _named_modules(line: str) -> set[str]:
    """The `*.py` files a package's line names, e.g. `registry.py`."""
    return {token for token in line.split("`")[1::2] if token.endswith(".py") and "/" not in token}


def test_every_room_in_the_readme_exists():
    rooms = _rooms()
    assert len(rooms) > 20, "the README's 'Where things live' section is missing or unparsed"
    missing = [path for path in rooms if not (ROOT / path).exists()]
    assert not missing, f"README names rooms that do not exist: {missing}"
    for path, line in rooms.items():
        if path.startswith("moderation/") and path.endswith("/") and (ROOT / path / "__init__.py").is_file():
            absent = sorted(name for name in _named_modules(line) if not (ROOT / path / name).is_file())
            assert not absent, f"README's line for {path} names modules it does not have: {absent}"


def test_every_module_and_package_of_moderation_has_a_room_in_the_readme():
    rooms = _rooms()
    entries = {f"moderation/{p.name}" for p in PACKAGE.glob("*.py")}
    entries |= {f"moderation/{p.name}/" for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert not sorted(entries - set(rooms)), f"README has no room for: {sorted(entries - set(rooms))}"
    for package in sorted(e for e in entries if e.endswith("/") and e != "moderation/data/"):
        modules = {p.name for p in (ROOT / package).glob("*.py")} - {"__init__.py"}
        unnamed = sorted(modules - _named_modules(rooms[package]))
        assert not unnamed, f"README's line for {package} does not name: {unnamed}"
