"""Where a user's code comes from: a Python file or a Jupyter notebook, read by one rule -- its definitions run, its
work does not -- as a namespace of names -> objects, with where each name was defined; and, without running
anything, which names a file defines (scan), from which its form is recognised (verification.forms).

The definitions rule (stated in docs/check.md, tested in tests/test_sources.py). A notebook's code cells are read
with nbformat, in order, each parsed on its own after its IPython-only lines are blanked (`%magic`, `!shell`,
`help?`; a `%%cell` magic drops its cell), so a Colab `!pip install` or a `?` cell leaves the rest valid; a `.py`
file is one cell (a script exported from a notebook, or one that loads data and trains at module level, is read the
same way). From each only the top-level statements that *define* things run:
- `import` / `from ... import`; one that fails binds a stand-in (MissingModule) that raises the ImportError only
  when the checked code uses it -- a course's helper module (`planar_utils`, `dlc_practical_prologue`,
  `testCases_v2`, `nnfs`), an absent package (`cv2`, `google.colab`), a module path that moved -- except the helpers
  whose few functions the checked code calls, which stand in as the course defines them (verification.standins:
  `planar_utils.sigmoid`, `past.builtins.xrange`, ...); the report says which imports were stood in for;
- `def` and `class`;
- assignments whose right-hand side calls nothing (`sigma = torch.tanh`, `eta = 0.1`, a lambda), only NumPy, torch,
  math, functools or operator (`device = torch.device("cpu")`, `EPS = np.finfo(float).eps`, `f = partial(g, k=1)`;
  not their file or data loaders), or only
  constructs an `nn.Module` from call-free arguments (`loss_fn = torch.nn.MSELoss()`, `model = MLP()`);
- `sys.path.insert(0, "..")` / `sys.path.append(...)`: where its own imports come from;
- `if` / `try` blocks made only of the above (`if __name__ == "__main__":` and its training never run).
Everything else -- calls of the file's own functions, loops, `print`, data downloads, training, plotting -- is
skipped, so a notebook that mounts Google Drive and trains for minutes is checked in seconds. A statement that
raises is skipped and noted. The last definition of a name counts (a notebook that defines backward_pass four times
is checked on the fourth), and the report names its cell or line; if the last definition of a needed name does not
parse or raises, that is one error line naming where, never an earlier draft checked in its place.
"""

from __future__ import annotations

import ast
import functools
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

NOTEBOOK_SUFFIX = ".ipynb"
_CAPTURE = re.compile(r"^[\w, ]+=\s*[%!]")  # files = !ls, t = %timeit f()
#: IPython's help syntax, a line of its own: `torch.mv?`, `np.dot??`, `?np.dot`, `%timeit?` -- never a line of code
#: whose comment ends in a question mark (`x = f(x)  # or g?`)
_HELP = re.compile(r"^(\?{1,2}[%\w.\[\]]+|[%\w.\[\]()]+\?{1,2})$")


class SourceError(ValueError):
    """The source cannot be read or the needed code cannot be defined from it (one line, naming the cell)."""


@dataclass
class Namespace:
    """The names a source defines, where each was last defined, and the definitions that failed."""

    names: dict[str, object]
    origin: dict[str, str] = field(default_factory=dict)  # name -> "cell 14 (In [146]): def backward_pass(..."
    failed: dict[str, str] = field(default_factory=dict)  # name -> why its last definition did not run
    path: Path | None = None
    stood_in: dict[str, str] = field(default_factory=dict)  # module whose import failed -> what stands in for it
    notes: list[str] = field(default_factory=list)  # how the source was read, when not as written (Python 2)

    def get(self, name: str) -> object:
        """The object, or SourceError naming why it is not there (its last definition failed, or none exists)."""
        if name in self.failed:
            raise SourceError(self.failed[name])
        if name not in self.names:
            where = f" in {self.path.name}" if self.path else ""
            raise SourceError(f"no definition of {name}{where}")
        return self.names[name]


class MissingModule:
    """Stands for a module (or a name imported from it) whose import failed: harmless until the checked code uses
    it, then that ImportError; the attributes in `known` are the course's own definitions (verification.standins)."""

    def __init__(self, name: str, error: str, known: dict[str, object] | None = None) -> None:
        self._name, self._error, self._known = name, error, known or {}

    def _fail(self, *args: object, **kwargs: object) -> None:
        raise ImportError(f"{self._name} could not be imported here ({self._error}), and the checked code uses it")

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in self._known:
            return self._known[attr]
        self._fail()

    def __repr__(self) -> str:
        return f"<stand-in for {self._name}>"

    __call__ = _fail


def load(path: Path) -> Namespace:
    """The namespace of a .py file or a notebook: its definitions, by the rule above; the modules beside it that it
    imports (`from network import Network`, cs231n's `from cs231n.classifiers.neural_net import TwoLayerNet`) are
    read by the same rule (SiblingFinder), their stood-in imports reported with its own."""
    if not path.is_file():
        raise SourceError(f"plug-in file not found: {path}")
    folder = path.resolve().parent
    if str(folder) not in sys.path:  # the code's own modules import as in its folder
        sys.path.insert(0, str(folder))
    finder = SiblingFinder(folder)
    sys.meta_path.insert(0, finder)
    try:
        ns = load_notebook(path) if path.suffix == NOTEBOOK_SUFFIX else load_python(path)
    finally:
        sys.meta_path.remove(finder)  # modules it imported are loaded; their functions keep working after
    _assumed_imports(ns, path)
    for name, other in finder.loaded.items():
        ns.stood_in.update({m: f"{why} (imported by {name})" for m, why in other.stood_in.items()})
        ns.notes.extend(f"{name}: {note}" for note in other.notes)
    return ns


#: names code uses as these modules without importing them (a star import of a course helper brought them there)
ASSUMED = {"np": "numpy", "torch": "torch", "math": "math"}


def _assumed_imports(ns: Namespace, path: Path) -> None:
    """Bind np (torch, math) where the code uses `np.` but no import anywhere in it binds np, saying so."""
    import importlib

    if path.suffix == NOTEBOOK_SUFFIX:
        text = "\n".join(python_lines(raw) for _, raw in notebook_cells(path))
    else:
        text = python_source(path)
    bound = set()
    for line in text.splitlines():  # every import, a function's own included (`import torch` inside a method)
        if m := re.match(r"\s*(?:from\s+\S+\s+)?import\s+(.+)", line):
            bound |= {part.split(" as ")[-1].strip().split(".")[0] for part in m.group(1).split(",")}
    for name, module in ASSUMED.items():
        if name not in ns.names and name not in bound and re.search(rf"\b{name}\.\w", text):
            ns.names[name] = importlib.import_module(module)
            ns.notes.append(f"{name}: used but never imported here; {module} assumed (a star import of a helper?)")


class SiblingFinder:
    """A meta-path finder for the modules under one folder (a student's own files and packages): each is read by
    the definitions rule, as the checked file is, so a helper beside it that trains at import or imports a course
    module that is not here still gives its definitions."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loaded: dict[str, Namespace] = {}

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin is None or origin.suffix != ".py" or not origin.is_relative_to(self.folder):
            return None
        spec.loader = _DefinitionsLoader(self, origin)
        return spec


class _DefinitionsLoader:
    """Executes a module found by SiblingFinder by the definitions rule, into the module's own namespace."""

    def __init__(self, finder: SiblingFinder, origin: Path) -> None:
        self.finder, self.origin = finder, origin

    def create_module(self, spec: object) -> None:
        return None  # the default module object

    def exec_module(self, module: object) -> None:
        tree, text, note = parse_python(python_source(self.origin), self.origin.name)
        names = module.__dict__
        ns = Namespace(names, path=self.origin, notes=[note] if note else [])
        lines, libs = text.splitlines(), library_aliases(tree)
        for stmt in tree.body:
            first = lines[stmt.lineno - 1].strip()[:60] if stmt.lineno <= len(lines) else ""
            where = f"{self.origin.name} line {stmt.lineno}"
            _run_definition(stmt, ns, names, f"line {stmt.lineno}", first, where, libs, str(self.origin))
        self.finder.loaded[module.__name__] = ns


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: the most source a file may hold to be read (a .py, a notebook's code cells): ~20x the largest homework met (the
#: cs231n notebooks' code is < 50 KiB), so that reading what a stranger hands in is bounded in time and memory
MAX_SOURCE_BYTES = 1 << 20
MAX_NOTEBOOK_BYTES = 64 << 20  #: a notebook's JSON, its outputs (plots as base64) included
PY2_MAX_BYTES = 128 << 10  #: Python 2 text converted by 2to3 (~14 s per MiB measured: ~1.8 s at this size)


class TooLarge(SourceError):
    """A file the checker does not read: more source than MAX_SOURCE_BYTES, or no regular file at all."""


def _bounded_bytes(path: Path, limit: int) -> bytes:
    """A regular file's bytes, if it holds at most `limit`; one SourceError line otherwise (a FIFO or a device would
    block or never end, a huge file would cost minutes to parse)."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise TooLarge(f"{path.name} is not a regular file (a FIFO, socket or device): not read")
        if st.st_size > limit:
            raise TooLarge(
                f"{path.name} is {st.st_size / 2**20:.1f} MiB: more than the {limit >> 20} MiB of source read from "
                "a file"
            )
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def python_source(path: Path) -> str:
    """A .py file's text (UTF-8, else Latin-1: old files are not always UTF-8); one SourceError line if unreadable."""
    raw = _bounded_bytes(path, MAX_SOURCE_BYTES)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


PYTHON2 = "Python 2 code, run as Python 3 after 2to3's fixes (print, except, xrange, iteritems, ...)"


def parse_python(text: str, where: str) -> tuple[ast.Module, str, str]:
    """(the tree, the text it was parsed from, a note): Python 3 as it is; Python 2 code (print x, except E, e) through
    2to3's fixers (lib2to3, in the standard library up to Python 3.12), the note saying so; else one SourceError
    line."""
    try:
        return ast.parse(text, filename=where), text, ""
    except (RecursionError, MemoryError, ValueError) as exc:  # nested past the parser's depth, a NUL byte
        raise SourceError(f"{where} does not parse: {type(exc).__name__}: {_first_line(exc)}") from None
    except SyntaxError as exc:
        py2 = "Missing parentheses" in str(exc.msg) or re.search(r"^\s*print\s+[^(=\s]", text, re.MULTILINE)
        converted = _from_python2(text) if py2 and len(text) <= PY2_MAX_BYTES else None
        if converted is not None:
            try:
                return ast.parse(converted, filename=where), converted, PYTHON2
            except (SyntaxError, RecursionError, MemoryError, ValueError):
                pass
        note = " (Python 2 code, which 2to3 could not convert here)" if py2 else ""
        if py2 and len(text) > PY2_MAX_BYTES:
            note = f" (Python 2 code, more than the {PY2_MAX_BYTES >> 10} KiB converted by 2to3)"
        raise SourceError(f"{where} does not parse: SyntaxError: {exc.msg} (line {exc.lineno}){note}") from None


@functools.lru_cache(maxsize=32)  # the grader reads a file twice (its form, then its imports): converted once
def _from_python2(text: str) -> str | None:
    """The text through every default 2to3 fixer, or None where lib2to3 is gone (Python 3.13) or fails."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lib2to3 import refactor

            tool = refactor.RefactoringTool(refactor.get_fixers_from_package("lib2to3.fixes"))
            return str(tool.refactor_string(text if text.endswith("\n") else text + "\n", "<python 2>"))
    except Exception:  # noqa: BLE001 - ImportError (3.13+) or a parse error of lib2to3's own: no conversion
        return None


def load_python(path: Path) -> Namespace:
    """Run a .py file's definitions (the module docstring's rule) in a module of its own."""
    tree, text, note = parse_python(python_source(path), path.name)
    ns, names = _fresh(path)
    if note:
        ns.notes.append(note)
    lines, libs = text.splitlines(), library_aliases(tree)
    for stmt in tree.body:
        first = lines[stmt.lineno - 1].strip()[:60] if stmt.lineno <= len(lines) else ""
        _run_definition(
            stmt, ns, names, f"line {stmt.lineno}", first, f"{path.name} line {stmt.lineno}", libs, str(path)
        )
    return ns


def _fresh(path: Path) -> tuple[Namespace, dict[str, object]]:
    """A module of its own (registered in sys.modules: dataclasses and pickling look a class's module up there)."""
    import types

    name = f"_twolayer_source_{abs(hash(path.resolve()))}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    names = module.__dict__
    return Namespace(names, path=path), names


def notebook_cells(path: Path) -> list[tuple[str, str]]:
    """(label, source) of each code cell: 'cell 14 (In [146])', numbered among all cells from 1."""
    import warnings

    import nbformat

    raw = _bounded_bytes(path, MAX_NOTEBOOK_BYTES)
    try:
        with warnings.catch_warnings():  # nbformat's MissingIDFieldWarning of old notebooks: nothing to act on
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - JSON or schema errors of any kind are one line
        raise SourceError(f"{path.name} is not a readable notebook: {type(exc).__name__}: {_first_line(exc)}") from None
    cells = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.get("cell_type") != "code":
            continue
        count = cell.get("execution_count")
        cells.append((f"cell {i}" + (f" (In [{count}])" if count is not None else ""), str(cell.source)))
    if sum(len(raw) for _, raw in cells) > MAX_SOURCE_BYTES:
        raise TooLarge(f"{path.name} holds more than the {MAX_SOURCE_BYTES >> 20} MiB of code read from a notebook")
    return cells


def python_lines(source: str) -> str:
    """The cell with its IPython-only lines blanked (line numbers kept); '' for a %%cell magic."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return ""
    out = []
    for line in lines:
        s = line.strip()
        ipython = s.startswith(("%", "!")) or _HELP.match(s) or _CAPTURE.match(s)
        out.append("" if ipython else line)
    return "\n".join(out)


def _calls(node: ast.AST) -> bool:
    """Whether evaluating `node` calls anything (a lambda's calls run only when it is called)."""
    return any(isinstance(n, ast.Call) for n in _outside_lambdas(node))


#: the libraries whose calls a definition may make (pure arithmetic and constructors), by their module's root name
LIBRARIES = ("numpy", "torch", "math", "functools", "operator")
#: ... except what reads or writes files, downloads, or loads data
_IO = re.compile(r"load|save|read|write|download|fromfile|genfromtxt|open|DataLoader|datasets|hub|manual_seed|seed")


def library_aliases(tree: ast.AST) -> frozenset[str]:
    """The names a source binds to LIBRARIES' modules: `import numpy as np` -> np, `from torch import nn` -> nn."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in LIBRARIES}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIBRARIES and not node.level:
            out |= {a.asname or a.name for a in node.names if a.name != "*"}
    return frozenset(out)


def _library_call(call: ast.Call, libs: frozenset[str]) -> bool:
    """A call of an attribute of a library alias (np.zeros, torch.device, nn.Linear), not of a file or data loader."""
    parts, node = [], call.func
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in libs:
        return False
    return not any(_IO.search(p) for p in [node.id, *parts])


def _calls_only_modules(value: ast.expr, libs: frozenset[str] = frozenset()) -> bool:
    """The value calls nothing but the libraries (`libs`: their aliases), or is one call (of something checked at
    run time to be an nn.Module class) with such a callee and arguments."""

    def library_only(node: ast.AST) -> bool:
        return all(_library_call(c, libs) for c in _outside_lambdas(node) if isinstance(c, ast.Call))

    if library_only(value):
        return True
    if isinstance(value, ast.Call):  # one call of another callee: its callee and arguments call libraries at most
        return all(library_only(a) for a in [value.func, *value.args, *(k.value for k in value.keywords)])
    return False


def _outside_lambdas(node: ast.AST) -> list[ast.AST]:
    """The nodes of `node` that a lambda's body does not contain (a lambda's calls run only when it is called)."""
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        out.append(n)
        if not isinstance(n, ast.Lambda):
            todo.extend(ast.iter_child_nodes(n))
    return out


def _import_path(stmt: ast.stmt) -> bool:
    """sys.path.insert(i, "dir") / sys.path.append("dir") with call-free arguments: where the file's own imports
    come from (`sys.path.insert(0, "..")` before `from utils import ...`), so part of its definitions."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    f = stmt.value.func
    path = isinstance(f, ast.Attribute) and f.attr in ("insert", "append") and isinstance(f.value, ast.Attribute)
    path = path and f.value.attr == "path" and isinstance(f.value.value, ast.Name) and f.value.value.id == "sys"
    return path and not any(_calls(a) for a in stmt.value.args)


def definition(stmt: ast.stmt, libs: frozenset[str] = frozenset()) -> bool:
    """Whether a top-level statement defines something (the rule in the module docstring); `libs` are the names the
    source binds to NumPy, torch and math (library_aliases), whose calls an assignment may make."""
    if isinstance(stmt, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if _import_path(stmt):
        return True
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
        return _calls_only_modules(stmt.value, libs)
    if isinstance(stmt, ast.If):
        return all(definition(s, libs) or isinstance(s, ast.Pass) for s in [*stmt.body, *stmt.orelse])
    if isinstance(stmt, ast.Try):
        parts = [*stmt.body, *stmt.orelse, *stmt.finalbody, *(s for h in stmt.handlers for s in h.body)]
        return all(definition(s, libs) or isinstance(s, ast.Pass) for s in parts)
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


def _call_is_allowed(value: ast.expr, names: dict[str, object], libs: frozenset[str]) -> bool:
    """An assignment's calls are the libraries' only, or it is one call whose callee evaluates (without calling
    anything) to an nn.Module subclass."""
    calls = [n for n in _outside_lambdas(value) if isinstance(n, ast.Call)]
    if all(_library_call(c, libs) for c in calls) or not isinstance(value, ast.Call):
        return True
    try:
        callee = eval(compile(ast.Expression(value.func), "<callee>", "eval"), names)
    except Exception:  # noqa: BLE001 - an unknown callee is not a module class
        return False
    import torch

    return isinstance(callee, type) and issubclass(callee, torch.nn.Module)


def _stand_in(stmt: ast.Import | ast.ImportFrom, exc: BaseException, ns: Namespace, names: dict[str, object]) -> None:
    """Bind what a failed import would have bound to stand-ins (the course's own definitions where it has them),
    and note the module in ns.stood_in."""
    from verification.standins import KNOWN

    error = f"{type(exc).__name__}: {_first_line(exc)}"
    if isinstance(stmt, ast.ImportFrom):
        module = "." * stmt.level + (stmt.module or "")
        known = KNOWN.get(module.lstrip("."), {})
        for a in stmt.names:
            if a.name == "*":
                names.update(known)
                continue
            names[a.asname or a.name] = known.get(a.name) or MissingModule(f"{module}.{a.name}", error)
            ns.failed.pop(a.asname or a.name, None)
        kept = sorted(
            {n for a in stmt.names for n in (known if a.name == "*" else [a.name] if a.name in known else [])}
        )
    else:
        kept = []
        for a in stmt.names:
            module = a.name
            bound = a.asname or a.name.split(".")[0]
            known = KNOWN.get(a.name if a.asname else bound, {})
            names[bound] = MissingModule(a.name if a.asname else bound, error, known)
            ns.failed.pop(bound, None)
    course = f"; {', '.join(kept)} as {module.lstrip('.')} defines {'them' if len(kept) > 1 else 'it'}" if kept else ""
    ns.stood_in[module.lstrip(".") or module] = f"{error}{course}"


def _run_definition(
    stmt: ast.stmt,
    ns: Namespace,
    names: dict[str, object],
    label: str,
    first: str,
    where: str,
    libs: frozenset[str],
    filename: str = "",
) -> None:
    """Run one top-level statement if it defines something (the rule above), recording where each name it binds
    was last defined, or why that definition failed; `filename` is what tracebacks name (the file's own path)."""
    if not definition(stmt, libs):
        return
    if isinstance(stmt, ast.Assign | ast.AnnAssign) and not _call_is_allowed(stmt.value, names, libs):
        return
    bound = _bound_names(stmt)
    code = compile(ast.Module([stmt], type_ignores=[]), filename or where, "exec")
    try:
        exec(code, names)
    except Exception as exc:  # noqa: BLE001 - a definition that raises is noted, and named if it is needed
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            _stand_in(stmt, exc, ns, names)
            return
        for name in bound:
            ns.failed[name] = f"{where} ({first!r}) raised {type(exc).__name__}: {_first_line(exc)}"
        return
    for name in bound:
        ns.origin[name] = f"{label}: {first}"
        ns.failed.pop(name, None)


def load_notebook(path: Path) -> Namespace:
    """Run a notebook's definitions (the module docstring's rule) in a module of its own."""
    ns, names = _fresh(path)
    cells = [(label, raw, python_lines(raw)) for label, raw in notebook_cells(path)]
    trees: list[ast.Module | SyntaxError] = []
    for label, _, text in cells:
        try:
            trees.append(ast.parse(text, filename=f"{path.name} {label}"))
        except SyntaxError as exc:
            trees.append(exc)
    libs = frozenset().union(*(library_aliases(t) for t in trees if isinstance(t, ast.Module)))
    for (label, raw, _), tree in zip(cells, trees, strict=True):
        first = next((ln.strip() for ln in raw.splitlines() if ln.strip()), "")[:60]
        where = f"{path.name} {label}"
        if isinstance(tree, SyntaxError):
            for name in _defined_in_text(raw):
                ns.failed[name] = f"{where} ({first!r}) does not parse: SyntaxError: {tree.msg} (line {tree.lineno})"
            continue
        for stmt in tree.body:
            _run_definition(stmt, ns, names, label, first, where, libs)
    return ns


def _defined_in_text(source: str) -> list[str]:
    """Names a cell that does not parse appears to define (def NAME / class NAME at the start of a line)."""
    out = []
    for line in source.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("def", "class"):
            out.append(words[1].split("(")[0].split(":")[0])
    return out


# ---- which names a source defines, without running it ---------------------------------------------------------------


@dataclass(frozen=True)
class ClassInfo:
    """A class a source defines: its bases' names (as written, last part: nn.Module -> Module) and its methods."""

    bases: tuple[str, ...]
    methods: tuple[str, ...]
    init_args: tuple[str, ...] = ()  # its __init__'s parameters, self aside (a Layer_Dense's regulariser)
    uses: frozenset[str] = frozenset()  # every name and attribute its body mentions (sigmoid(, Relu(), ...)


@dataclass
class Defined:
    """The names a source defines (functions with their parameters, classes), what it imports from where, and which
    libraries it uses: what forms are recognised from (verification.forms), read without running anything."""

    functions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    imported: dict[str, str] = field(default_factory=dict)  # name -> the module it is imported from
    libraries: frozenset[str] = frozenset()  # root modules imported (numpy, torch, ...)
    path: Path | None = None

    @property
    def numpy_only(self) -> bool:
        """NumPy code: it imports NumPy and not torch (checked at the float64 its author wrote for)."""
        return "numpy" in self.libraries and "torch" not in self.libraries

    def add(self, tree: ast.Module) -> None:
        """The top-level definitions and imports of one parsed cell or file (a later one replaces an earlier)."""
        todo = list(tree.body)
        while todo:
            s = todo.pop(0)
            if isinstance(s, ast.If | ast.Try):
                todo[:0] = _block(s)
            else:
                self._one(s)
        nodes = list(ast.walk(tree))
        used = {n.value.id for n in nodes if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
        bound = {(a.asname or a.name).split(".")[0] for n in nodes if isinstance(n, ast.Import | ast.ImportFrom)
                 for a in n.names}  # fmt: skip
        # np.dot with no import of np anywhere: a star import of a course helper brought it (load binds it, ASSUMED)
        self.libraries |= {ASSUMED[n] for n in used & set(ASSUMED) - bound - set(self.imported) if n != "math"}

    def _one(self, s: ast.stmt) -> None:
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef):
            self.functions[s.name] = tuple(a.arg for a in [*s.args.posonlyargs, *s.args.args])
        elif isinstance(s, ast.ClassDef):
            bases = tuple(_last_name(b) for b in s.bases)
            defs = [m for m in s.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
            init = next((m for m in defs if m.name == "__init__"), None)
            args = tuple(a.arg for a in [*init.args.args, *init.args.kwonlyargs][1:]) if init else ()
            uses = frozenset(
                n.id if isinstance(n, ast.Name) else n.attr
                for n in ast.walk(s)
                if isinstance(n, ast.Name | ast.Attribute)
            )
            self.classes[s.name] = ClassInfo(bases, tuple(m.name for m in defs), args, uses)
        elif isinstance(s, ast.ImportFrom):
            self.libraries |= {(s.module or "").split(".")[0]} if not s.level else set()
            for a in s.names:
                self.imported[a.asname or a.name] = "." * s.level + (s.module or "")
        elif isinstance(s, ast.Import):
            self.libraries |= {a.name.split(".")[0] for a in s.names}

    @classmethod
    def of(cls, source: object) -> Defined:
        """What a live object or namespace defines (check_backprop(globals()), a module, a class): from the objects."""
        import inspect
        from types import ModuleType

        items = vars(source) if isinstance(source, ModuleType) else source
        if isinstance(source, Namespace):
            items = source.names
        out = cls()
        if not isinstance(items, dict):
            items = {getattr(source, "__name__", "obj"): source}
        for name, obj in items.items():
            if isinstance(obj, ModuleType):
                out.libraries |= {obj.__name__.split(".")[0]}
            elif inspect.isclass(obj):
                methods = tuple(m for m, v in vars(obj).items() if callable(v))
                bases = tuple(b.__name__ for b in obj.__mro__[1:])
                try:
                    args = tuple(inspect.signature(obj).parameters)
                except (TypeError, ValueError):
                    args = ()
                out.classes[name] = ClassInfo(bases, methods, args, _uses(obj))
                out.libraries |= _libraries(*(v for v in vars(obj).values() if inspect.isfunction(v)))
                out.libraries |= {"torch"} if any(b.__module__.startswith("torch") for b in obj.__mro__) else set()
            elif inspect.isfunction(obj):
                try:
                    out.functions[name] = tuple(inspect.signature(obj).parameters)
                except (TypeError, ValueError):
                    continue
                out.libraries |= _libraries(obj)
        return out


def _uses(cls: type) -> frozenset[str]:
    """The names and attributes a live class's methods mention (their code's co_names, nested code included)."""
    out: set[str] = set()
    todo = [getattr(v, "__code__", None) for v in vars(cls).values()]
    while todo:
        code = todo.pop()
        if code is not None and hasattr(code, "co_names"):
            out |= set(code.co_names)
            todo += [c for c in code.co_consts if hasattr(c, "co_names")]
    return frozenset(out)


def _libraries(*functions: object) -> frozenset[str]:
    """NumPy and torch, as far as the functions' module globals bind them (np, torch, nn, F, ...)."""
    from types import ModuleType

    mods = set()
    for fn in functions:
        for v in getattr(fn, "__globals__", {}).values():
            if isinstance(v, ModuleType):
                mods.add(v.__name__.split(".")[0])
        mods |= set(getattr(getattr(fn, "__code__", None), "co_names", ()))  # import torch inside the function
    return frozenset(mods & {"numpy", "torch"})


def _block(node: ast.If | ast.Try) -> list[ast.stmt]:
    parts = [*node.body, *node.orelse]
    if isinstance(node, ast.Try):
        parts += [*node.finalbody, *(s for h in node.handlers for s in h.body)]
    return parts


def _last_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def scan(path: Path) -> Defined:
    """What a .py file or notebook defines, by parsing it (nothing runs); SourceError (one line) if unreadable."""
    out = Defined(path=path)
    if path.suffix == NOTEBOOK_SUFFIX:
        for _, raw in notebook_cells(path):
            try:
                out.add(ast.parse(python_lines(raw)))
            except (SyntaxError, RecursionError, MemoryError, ValueError):
                continue  # a cell that does not parse defines nothing here (load names it if it is needed)
    else:
        out.add(parse_python(python_source(path), path.name)[0])
    return out
