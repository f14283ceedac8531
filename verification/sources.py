"""Where a user's code comes from: a Python file (imported as a module, as `from my_file import X` would) or a
Jupyter notebook (its definitions run, its work does not), as a namespace of names -> objects, with where each
name was defined.

The notebook rule (stated in README, tested in tests/test_sources.py): the code cells are read with nbformat, in
order. Each cell is parsed on its own, after its IPython-only lines are blanked (`%magic`, `!shell`, `help?`;
a `%%cell` magic drops its cell), so a Colab `!pip install` or a `?` cell leaves the rest valid. From each cell only
the statements that *define* things run:
- `import` / `from ... import` (one that fails binds a stand-in that raises the ImportError when the checked code
  uses it: a notebook's `from google.colab import drive` or the course's own prologue module need not exist here);
- `def` and `class`;
- assignments whose right-hand side calls nothing (`sigma = torch.tanh`, `eta = 0.1`, a lambda), or only
  constructs an `nn.Module` from call-free arguments (`loss_fn = torch.nn.MSELoss()`, `model = MLP()`);
- `if` / `try` blocks made only of the above.
Everything else -- calls, loops, `print`, data downloads, training, plotting -- is skipped, so a notebook that
mounts Google Drive and trains for minutes is checked in seconds. A statement that raises is skipped and noted.
The last definition of a name counts (a notebook that defines backward_pass four times is checked on the fourth),
and the report names its cell; if the last definition of a needed name is in a cell that does not parse or raises,
that is one error line naming the cell (its number and first line), never an earlier draft checked in its place.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOK_SUFFIX = ".ipynb"
_CAPTURE = re.compile(r"^[\w, ]+=\s*[%!]")  # files = !ls, t = %timeit f()


class SourceError(ValueError):
    """The source cannot be read or the needed code cannot be defined from it (one line, naming the cell)."""


@dataclass
class Namespace:
    """The names a source defines, where each was last defined, and the definitions that failed."""

    names: dict[str, object]
    origin: dict[str, str] = field(default_factory=dict)  # name -> "cell 14 (In [146]): def backward_pass(..."
    failed: dict[str, str] = field(default_factory=dict)  # name -> why its last definition did not run
    path: Path | None = None

    def get(self, name: str) -> object:
        """The object, or SourceError naming why it is not there (its last definition failed, or none exists)."""
        if name in self.failed:
            raise SourceError(self.failed[name])
        if name not in self.names:
            where = f" in {self.path.name}" if self.path else ""
            raise SourceError(f"no definition of {name}{where}")
        return self.names[name]


class MissingModule:
    """Stands for a module whose import failed: harmless until the checked code uses it, then that ImportError."""

    def __init__(self, name: str, error: str) -> None:
        self._name, self._error = name, error

    def _fail(self, *args: object, **kwargs: object) -> None:
        raise ImportError(f"{self._name} could not be imported here ({self._error}), and the checked code uses it")

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._fail()

    __call__ = _fail


def load(path: Path) -> Namespace:
    """The namespace of a .py file (imported) or a notebook (its definitions, by the rule above)."""
    if not path.is_file():
        raise SourceError(f"plug-in file not found: {path}")
    folder = str(path.resolve().parent)
    if folder not in sys.path:  # the code's own modules (`from network import Network`) import as in its folder
        sys.path.insert(0, folder)
    if path.suffix == NOTEBOOK_SUFFIX:
        return load_notebook(path)
    return Namespace(vars(import_file(path)), path=path)


def import_file(path: Path) -> object:
    """Import a Python file as a module of its own; an import that raises is one SourceError line."""
    name = f"_twolayer_plugin_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SourceError(f"cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise SourceError(f"importing {path} failed: {type(exc).__name__}: {_first_line(exc)}") from exc
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def notebook_cells(path: Path) -> list[tuple[str, str]]:
    """(label, source) of each code cell: 'cell 14 (In [146])', numbered among all cells from 1."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - JSON or schema errors of any kind are one line
        raise SourceError(f"{path.name} is not a readable notebook: {type(exc).__name__}: {_first_line(exc)}") from None
    cells = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.get("cell_type") != "code":
            continue
        count = cell.get("execution_count")
        cells.append((f"cell {i}" + (f" (In [{count}])" if count is not None else ""), str(cell.source)))
    return cells


def python_lines(source: str) -> str:
    """The cell with its IPython-only lines blanked (line numbers kept); '' for a %%cell magic."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return ""
    out = []
    for line in lines:
        s = line.strip()
        ipython = s.startswith(("%", "!")) or (s.endswith("?") and not s.startswith("#")) or _CAPTURE.match(s)
        out.append("" if ipython else line)
    return "\n".join(out)


def _calls(node: ast.AST) -> bool:
    """Whether evaluating `node` calls anything (a lambda's calls run only when it is called)."""
    return any(isinstance(n, ast.Call) for n in _outside_lambdas(node))


def _calls_only_modules(value: ast.expr) -> bool:
    """The value calls nothing, or is one call (of something checked at run time to be an nn.Module class) with
    call-free callee and arguments."""
    if isinstance(value, ast.Call):
        return not any(_calls(a) for a in [value.func, *value.args, *(k.value for k in value.keywords)])
    return not _calls(value)


def _outside_lambdas(node: ast.AST) -> list[ast.AST]:
    """The nodes of `node` that a lambda's body does not contain (a lambda's calls run only when it is called)."""
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        out.append(n)
        if not isinstance(n, ast.Lambda):
            todo.extend(ast.iter_child_nodes(n))
    return out


def definition(stmt: ast.stmt) -> bool:
    """Whether a top-level statement defines something (the rule in the module docstring)."""
    if isinstance(stmt, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        return _calls_only_modules(stmt.value)
    if isinstance(stmt, ast.If):
        return all(definition(s) or isinstance(s, ast.Pass) for s in [*stmt.body, *stmt.orelse])
    if isinstance(stmt, ast.Try):
        parts = [*stmt.body, *stmt.orelse, *stmt.finalbody, *(s for h in stmt.handlers for s in h.body)]
        return all(definition(s) or isinstance(s, ast.Pass) for s in parts)
    return False


def _bound_names(stmt: ast.stmt) -> list[str]:
    """The names a statement binds at top level."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names if a.name != "*"]
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    names = []
    for t in targets:
        names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)] if t is not None else []
    if isinstance(stmt, ast.If | ast.Try):
        for s in ast.iter_child_nodes(stmt):
            if isinstance(s, ast.stmt):
                names += _bound_names(s)
    return names


def _call_is_module_class(value: ast.expr, names: dict[str, object]) -> bool:
    """A top-level call's callee evaluates (without calling anything) to an nn.Module subclass."""
    if not isinstance(value, ast.Call):
        return True
    try:
        callee = eval(compile(ast.Expression(value.func), "<callee>", "eval"), names)
    except Exception:  # noqa: BLE001 - an unknown callee is not a module class
        return False
    import torch

    return isinstance(callee, type) and issubclass(callee, torch.nn.Module)


def load_notebook(path: Path) -> Namespace:
    """Run a notebook's definitions (the module docstring's rule) in a fresh namespace."""
    names: dict[str, object] = {"__name__": f"_twolayer_notebook_{abs(hash(path.resolve()))}", "__file__": str(path)}
    ns = Namespace(names, path=path)
    for label, raw in notebook_cells(path):
        text = python_lines(raw)
        first = next((ln.strip() for ln in raw.splitlines() if ln.strip()), "")[:60]
        where = f"{path.name} {label} ({first!r})"
        try:
            tree = ast.parse(text, filename=f"{path.name} {label}")
        except SyntaxError as exc:
            for name in _defined_in_text(raw):
                ns.failed[name] = f"{where} does not parse: SyntaxError: {exc.msg} (line {exc.lineno})"
            continue
        for stmt in tree.body:
            if not definition(stmt):
                continue
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and not _call_is_module_class(stmt.value, names):
                continue
            bound = _bound_names(stmt)
            code = compile(ast.Module([stmt], type_ignores=[]), f"{path.name} {label}", "exec")
            try:
                exec(code, names)
            except ImportError as exc:
                for name in bound:
                    names[name] = MissingModule(name, f"{type(exc).__name__}: {_first_line(exc)}")
                    ns.failed.pop(name, None)
                continue
            except Exception as exc:  # noqa: BLE001 - a definition that raises is noted, and named if it is needed
                for name in bound:
                    ns.failed[name] = f"{where} raised {type(exc).__name__}: {_first_line(exc)} (line {stmt.lineno})"
                continue
            for name in bound:
                ns.origin[name] = f"{label}: {first}"
                ns.failed.pop(name, None)
    return ns


def _defined_in_text(source: str) -> list[str]:
    """Names a cell that does not parse appears to define (def NAME / class NAME at the start of a line)."""
    out = []
    for line in source.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("def", "class"):
            out.append(words[1].split("(")[0].split(":")[0])
    return out
