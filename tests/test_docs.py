"""The docs cannot drift: every command and code block in README.md and docs/*.md runs here.

A fenced block whose first line starts with `$ ` is run and the lines it shows must be printed (`...` alone skips
lines, `...` inside a line stands for any text, `[exit N]` is the exit status); `pycon` blocks run as one doctest
per page; other `python` blocks run, a page's blocks in order in one process (a block that only includes a repo
file with `--8<--` is that file, compiled here and tested where it lives); each `python -m` / `pytest` / `tox`
command of a `bash` block must use options its `--help` lists (or a tox label tox.ini defines).
"""

from __future__ import annotations

import configparser
import doctest
import functools
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", flags=re.M | re.S)
SNIPPET = re.compile(r'^(\s*)--8<-- "([^"]+)"\s*$', flags=re.M)
EXIT = re.compile(r"^\[exit (\d+)\]$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: its info string, its text (indentation removed, snippets expanded)."""

    page: str
    lang: str
    text: str
    only_snippet: str | None  # the repo file the block consists of, when it is nothing but an include

    @property
    def command(self) -> str:
        return self.text.split("\n", 1)[0][2:]


def _snippet(name: str) -> str:
    """What pymdownx.snippets includes for `path` or `path:section` (between its [start:..] and [end:..] markers)."""
    path, _, section = name.partition(":")
    text = (ROOT / path).read_text(encoding="utf-8")
    if section:
        found = re.search(rf"\[start:{section}\][^\n]*\n(.*?)\n[^\n]*\[end:{section}\]", text, flags=re.S)
        assert found, f"{path} has no snippet section {section!r}"
        text = found.group(1)
    return text.rstrip("\n")


def _expand(text: str) -> str:
    return SNIPPET.sub(lambda m: _snippet(m.group(2)), text)


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one markdown page, in order."""
    out = []
    for indent, lang, body in FENCE.findall(page.read_text(encoding="utf-8")):
        body = "\n".join(line[len(indent) :] for line in body.splitlines())
        only = SNIPPET.fullmatch(body.strip())
        out.append(Block(page.name, lang, _expand(body), only.group(2) if only else None))
    return out


def _all(kind: str) -> list[Block]:
    found = []
    for page in PAGES:
        for b in blocks(page):
            is_console = b.text.startswith("$ ")
            if (kind == "console" and is_console) or (not is_console and b.lang == kind):
                found.append(b)
    return found


def test_every_page_has_blocks_and_every_snippet_exists() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for *_, body in FENCE.findall(text):  # a marker a formatter mangled is no include
            for line in body.splitlines():
                assert not re.search(r"--8\s*<\s*--", line) or SNIPPET.match(line), f"{page.name}: broken {line!r}"
        for m in SNIPPET.finditer(text):
            assert _snippet(m.group(2)), f"{page.name} includes an empty {m.group(2)}"
    assert len(_all("console")) >= 15 and _all("pycon") and _all("bash"), "the docs lost their checked examples"


# ---- $ commands: run, shown lines printed --------------------------------------------------------------------


DOCS_OUT = Path("/tmp/twolayer-docs")  # where the documented commands write; the docs show a first run


@pytest.fixture(scope="module", autouse=True)
def _first_run() -> None:
    """Start from no earlier output: a gradebook of an older schema or a cached row changes what a command prints."""
    shutil.rmtree(DOCS_OUT, ignore_errors=True)


@functools.cache
def _run(command: str) -> tuple[int, frozenset[str]]:
    """Run one documented command once per session (README and a page may show the same one)."""
    argv = shlex.split(command)
    assert argv[0] in ("python", "twolayer"), f"examples run with python or twolayer: {command}"
    if argv[0] == "twolayer":  # the console script is `python -m verification.console`, installed or not
        argv = ["python", "-m", "verification.console", *argv[1:]]
    r = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    return r.returncode, frozenset((r.stdout + r.stderr).splitlines())


def _matches(shown: str, printed: frozenset[str]) -> bool:
    if "..." not in shown:
        return shown in printed
    pattern = re.compile(".*".join(map(re.escape, shown.split("..."))))
    return any(pattern.fullmatch(line) for line in printed)


CONSOLE = _all("console")


@pytest.mark.parametrize("block", CONSOLE, ids=[f"{b.page}: {b.command}" for b in CONSOLE])
def test_documented_command_prints_what_the_docs_show(block: Block) -> None:
    rc, printed = _run(block.command)
    shown = [line for line in block.text.rstrip("\n").split("\n")[1:] if line.strip() != "..."]
    missing = [line for line in shown if not EXIT.match(line) and not _matches(line, printed)]
    assert not missing, f"{block.page} claims lines that `{block.command}` does not print:\n" + "\n".join(missing)
    for line in shown:
        if m := EXIT.match(line):
            assert rc == int(m.group(1)), f"{block.page}: `{block.command}` exited {rc}, the docs say {m.group(1)}"


# ---- python: pycon as doctests, other blocks executed --------------------------------------------------------


def _pages_with(kind: str) -> list[str]:
    return sorted({b.page for b in _all(kind)})


@pytest.mark.parametrize("page", _pages_with("pycon"))
def test_pycon_blocks_run_as_doctests(page: str) -> None:
    text = "\n".join(b.text for b in _all("pycon") if b.page == page)
    test = doctest.DocTestParser().get_doctest(text, {}, page, page, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    runner.run(test, out=out.append)
    assert runner.failures == 0 and test.examples, "".join(out)


@pytest.mark.parametrize("page", _pages_with("python"))
def test_python_blocks_run(page: str) -> None:
    code = []
    for b in _all("python"):
        if b.page != page:
            continue
        if b.only_snippet:  # a repo file shown whole: it is tested where it lives; here it must compile
            compile(b.text, b.only_snippet, "exec")
        else:
            code.append(b.text)
    if not code:
        return
    r = subprocess.run(
        [sys.executable, "-c", "\n".join(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "docs" / "examples")},
    )
    assert r.returncode == 0, f"{page}'s python blocks fail:\n{r.stderr[-2000:]}"


# ---- bash: each command's options are ones its --help lists --------------------------------------------------


@functools.cache
def _help(prefix: tuple[str, ...]) -> str:
    r = subprocess.run([sys.executable, *prefix, "--help"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"`{' '.join(prefix)} --help` fails: {r.stderr[-500:]}"
    return r.stdout


def _tox_names() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tox.ini")
    labels = {line.split("=")[0].strip() for line in cfg["tox"]["labels"].splitlines() if "=" in line}
    return labels | {s.split(":", 1)[1] for s in cfg.sections() if s.startswith("testenv:")}


def commands(block: Block) -> list[list[str]]:
    """The commands of a bash block: comments dropped, `&&` chains split, `[...]` optional parts unwrapped."""
    out = []
    for line in block.text.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        for part in filter(None, (p.strip() for p in line.split("&&"))):
            out.append(shlex.split(part.replace("[", "").replace("]", "")))
    return out


BASH = [(b, argv) for b in _all("bash") for argv in commands(b)]


@pytest.mark.parametrize(("block", "argv"), BASH, ids=[f"{b.page}: {' '.join(a)}" for b, a in BASH])
def test_bash_commands_use_existing_options(block: Block, argv: list[str]) -> None:
    program = Path(argv[0]).name
    if program == "tox":
        flag = "-m" if "-m" in argv else "-e"
        assert argv[argv.index(flag) + 1] in _tox_names(), f"{block.page}: no tox label/env in {argv}"
        return
    if program == "pytest":
        prefix: tuple[str, ...] = ("-m", "pytest", *[a for a in argv[1:2] if not a.startswith("-")])
    elif program == "twolayer":  # twolayer CMD [SUBCOMMAND]: python -m verification.console CMD [SUBCOMMAND]
        prefix = ("-m", "verification.console", *argv[1:2], *[a for a in argv[2:3] if re.fullmatch(r"[a-z]+", a)])
    elif program.startswith("python") and argv[1:2] == ["-m"] and argv[2] not in ("venv", "pip"):
        if importlib.util.find_spec(argv[2]) is None:
            pytest.fail(f"{block.page}: no module {argv[2]}")
        sub = [a for a in argv[3:4] if re.fullmatch(r"[a-z]+", a)]  # a subcommand (reports compare)
        prefix = ("-m", argv[2], *sub)
    else:
        pytest.skip(f"not this project's command: {argv[0]}")
    helptext = _help(prefix)
    for opt in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert opt in helptext, f"{block.page}: `{' '.join(argv)}` uses {opt}, which `{' '.join(prefix)} --help` lacks"


def test_the_contributing_page_names_every_module() -> None:
    """The layout block of docs/contributing.md names each package's modules (an implementation's file excepted:
    the registry lists those), so a new module without its line there fails here."""
    import impls

    block = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8").split("## Layout and data flow", 1)[1]
    block = block.split("```", 2)[1]
    registered = {Path(sys.modules[impls.get(n).__module__].__file__).name for n in impls.names()}
    for package in ("impls", "verification", "benchmarks", "reports"):
        for module in sorted((ROOT / package).glob("*.py")):
            if module.name != "__init__.py" and not (package == "impls" and module.name in registered):
                assert module.name in block, f"docs/contributing.md's layout block lacks {package}/{module.name}"
