"""The import structure of ``bench`` and ``voc``: which module imports which, read from the source.

An import cycle makes a module's top-level ``from x import y`` fail with "partially initialized
module" depending on which module a user imports first; a package attribute named like one of its
submodules makes ``import pkg.sub as m`` return the attribute.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "voc")


def _modules() -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imports(path: Path, modules: dict[str, Path], *, function_level: bool) -> set[str]:
    """The project modules ``path`` imports: ``from a import b`` depends on the module ``a.b`` where
    there is one, else on ``a``; with ``function_level``, imports inside functions and under ``if
    TYPE_CHECKING:`` count too (a type-only import that points the other way still inverts the
    layering: the registry would know the report that asks it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = ast.walk(tree) if function_level else iter(tree.body)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in nodes:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(m for m in map(resolve, names) if m is not None)
    found.update(_registered(tree, path, modules))
    return found


def _registered(tree: ast.Module, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules a registry imports by name (``import_module``): the entries of a module-level
    ``MODULES`` tuple of strings, each a submodule of the package of ``path`` (``bench.protocols``)."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "MODULES" and node.value is not None:
            package = next(name for name, file in modules.items() if file == path.parent / "__init__.py")
            entries = ast.literal_eval(node.value)
            return {entry if "." in entry else f"{package}.{entry}" for entry in entries} & set(modules)
    return set()


def _cycles(function_level: bool) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    modules = _modules()
    graph = {name: _imports(path, modules, function_level=function_level) - {name} for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(components)


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in {"a": "from bench.b import x\n", "b": "def f():\n    from bench.a import y\n"}.items():
        (tmp_path / "bench").mkdir(exist_ok=True)
        (tmp_path / "bench" / f"{name}.py").write_text(text, encoding="utf-8")
    (tmp_path / "voc").mkdir()
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _cycles(function_level=False) == []
    assert _cycles(function_level=True) == [["bench.a", "bench.b"]]


def test_no_module_level_import_cycle() -> None:
    assert _cycles(function_level=False) == []


def test_no_import_cycle_through_function_level_imports() -> None:
    assert _cycles(function_level=True) == []


@pytest.mark.parametrize("package", sorted({name.rpartition(".")[0] for name in _modules() if "." in name}))
def test_no_package_attribute_hides_a_submodule(package: str) -> None:
    module = importlib.import_module(package)
    for path in (ROOT / package.replace(".", "/")).iterdir():
        name = path.stem if path.suffix == ".py" else path.name
        if name == "__init__" or not (path.suffix == ".py" or (path / "__init__.py").is_file()):
            continue
        submodule = importlib.import_module(f"{package}.{name}")
        attribute = getattr(module, name, submodule)
        assert attribute is submodule, f"{package}.{name} is {attribute!r}, hiding the submodule {submodule.__name__}"
