"""The package's layers: every import points down the layer order, and no two modules import each other in a loop.

Order, top to bottom (an import may go down or sideways, never up):
    cli -> experiments / delivery / video / showcase -> train / infer / export / evaluate
        -> data / models / pretrained / photos -> resize / color / metrics / errors / atomic (the leaves)
`tinysr/__init__.py`, `__main__` and the `tinysr.runtime` path are the public faces, above everything.
Imports inside functions count too: hiding one there does not make a cycle go away.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tinysr"

#: first dotted part below `tinysr` -> layer (higher imports lower). Modules not named here are leaves (0).
LAYERS = {"pretrained": 1, "photos": 1, "families": 1, "models": 1, "data": 1,
          "train": 2, "infer": 2, "export": 2, "evaluate": 2, "delivery": 3, "video": 3, "showcase": 3,
          "experiments": 3, "plan": 4, "api": 4, "openmodeldb": 4, "cli": 4, "runtime": 5, "__init__": 5, "__main__": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return LAYERS["__init__"]
    return LAYERS.get(parts[1], 0)


def imports_of(path: Path) -> set[str]:
    """The tinysr modules that `path` imports, anywhere in the file (`from tinysr import x` counts x if x is one)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tinysr")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tinysr") and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports_of(p) - {module_name(p)} for p in PACKAGE.rglob("*.py")}


def test_the_graph_is_read():
    assert len(GRAPH) > 60 and "tinysr.infer.upscale" in GRAPH["tinysr.cli.upscale"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_points_up(module):
    up = sorted(t for t in GRAPH[module] if t != "tinysr" and layer(t) > layer(module))
    assert not up, f"{module} (layer {layer(module)}) imports upward: {up}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles():
    # A package's __init__ is imported before its submodules anyway; `tinysr` itself only names its version and lazy API.
    graph = {m: {t for t in targets if t != "tinysr"} for m, targets in GRAPH.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
