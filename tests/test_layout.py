"""The shape of the code, as the README's "shape of the code" describes it, held by the suite.

Imports point one way: the faces (CLI, web, demo, …) over the counting, the counting over the
pipeline, the pipeline over the shared core; `channels/` know only the channel interface. No import
circle anywhere. A module over ~600 lines says at its top why it is one module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 650  # "~600": a little room before a module must explain itself
MAX_CLASS_LINES = 330

# the shared core: everything may import these, they import nothing of the layers above
CORE = {
    "publisher",
    "publisher.channel",
    "publisher.errors",
    "publisher.settings",
    "publisher.models",
    "publisher.db",
    "publisher.checklist",
    "publisher.testing",
    "publisher.notification",
    "publisher.catalogue",
    "publisher.notifier",
    "publisher.objectstore",
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in ("publisher", "channels"):
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which of our modules each module imports (at any depth in the file, type-checking ones too)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    hit = sub if sub in modules else target if target in modules else None
                    if hit and hit != name:
                        graph[name].add(hit)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules and a.name != name)
    return graph


MODULES = _modules()
GRAPH = _imports(MODULES)


def _layer(module: str) -> str:
    if module.startswith("channels"):
        return "channels"
    if module in CORE:
        return "core"
    if module.startswith("publisher.pipeline") or module == "publisher.app":
        # app.py wires settings, store and channels into the context the service functions take: it
        # imports only the core and the pipeline, and the counting's weekly sync runs on it
        return "pipeline"
    if module.startswith("publisher.counting"):
        return "counting"
    return "faces"


# what each layer may import; nothing may import the faces but the faces themselves
ALLOWED = {
    "core": {"core"},
    "pipeline": {"core", "pipeline"},
    "counting": {"core", "pipeline", "counting"},
    "faces": {"core", "pipeline", "counting", "faces"},
}


def test_the_tree_was_found():
    assert "publisher.pipeline.content" in MODULES
    assert "publisher.counting.stats" in MODULES
    assert GRAPH["publisher.counting.stats"], "the import graph is empty: the scan is broken"


def test_layers_point_one_way():
    wrong = []
    for module, targets in GRAPH.items():
        layer = _layer(module)
        for target in targets:
            if layer == "channels":
                # the transports (channels/notify/) implement publisher.notifier as channels publisher.channel
                ok = _layer(target) == "channels" or target in {
                    "publisher.channel",
                    "publisher.errors",
                    "publisher.notifier",
                }
            else:
                ok = _layer(target) in ALLOWED[layer]
            if not ok:
                wrong.append(f"{module} ({layer}) imports {target} ({_layer(target)})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_circle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in MODULES:
        if module not in index:
            visit(module)
    # a package's __init__ importing its own modules is not a circle of meaning; everything else is
    circles = [c for c in circles if not all(m.startswith(c[0]) for m in c)]
    assert not circles, f"import circles: {circles}"


def test_a_long_module_or_class_says_why():
    """Over ~600 lines a module, over ~300 a class, must say in its docstring why it is one piece."""
    unexplained = []
    for module, path in sorted(MODULES.items()):
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = text.count("\n")
        if lines > MAX_LINES and "one module" not in (ast.get_docstring(tree) or "").lower():
            unexplained.append(f"{module}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > MAX_CLASS_LINES and "one class" not in (ast.get_docstring(node) or "").lower():
                    unexplained.append(f"{module}.{node.name}: a class of {size} lines")
    assert not unexplained, "split these, or say in the docstring why each is one module / one class:\n" + "\n".join(
        unexplained
    )
