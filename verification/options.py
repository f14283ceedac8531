"""The command line of `python -m verification`: options, their validation into a Matrix, and the checks made
before the first case (memory, a writable CSV, hardware for a low precision). A bad option is a UsageError
(one line, exit 2)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from impls.precision import PRECISIONS, hardware_reason
from impls.spec import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS, NetSpec
from reports.atomic import check_writable
from reports.load import run_name
from reports.provenance import run_name as new_run_name
from verification.forms import CONFIGURATION, EVERY, FORMS, L2_CHOICES, Options, configuration, parse_bind
from verification.isolate import DEFAULT_TIMEOUT_S
from verification.plugin import PluginError, is_plugin_ref, split_ref
from verification.runner import DTYPES, VARIANTS, Matrix, parse_list
from verification.sources import NOTEBOOK_SUFFIX, Defined, SourceError, scan

RESULTS = Path("reports/results/verification")
#: measured on the 2-core CI machine: one torch thread is ~1.4x faster than two for these small cases (the
#: oracle's NumPy and the checked code then do not fight over the cores); the thread count is in every CSV row
DEFAULT_THREADS = 1


class UsageError(Exception):
    """Bad command line; one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verification",
        description="Compare loss, gradients and a K-step SGD trajectory with a float64 oracle.",
        epilog="Your own backprop: --impl path/to/file.py:fn or package.module:fn, where "
        "fn(params, x, t, spec) -> (loss, grads); raise NotImplementedError for configs you do not support.",
    )
    p.add_argument(
        "--impl",
        action="append",
        default=[],
        metavar="NAME|FILE.py:FN|PKG.MOD:FN",
        help="registered name or plug-in function (repeatable; default: every registered one)",
    )
    for opt, what in (("hidden", "hidden activations"), ("output", "output activations"), ("loss", "losses"),
                      ("l2", "L2 coefficients")):  # fmt: skip
        p.add_argument(f"--{opt}", help=f"{what}, comma-separated (default: the --layout's usual, else {EVERY[opt]})")
    p.add_argument(
        "--sizes",
        default=None,
        help=f"D-H-C shapes, comma-separated (default: the form's usual, else {EVERY['sizes']}: distinct sizes name "
        "a misshapen gradient, equal sizes let a transposed product run and be named by its values)",
    )
    p.add_argument("--batch", default="1,7,64", help="batch sizes, comma-separated (default 1,7,64)")
    p.add_argument(
        "--dtype",
        default=None,
        help="float32 and/or float64 (default: both; float64 for NumPy code, as its author wrote it; float32 with "
        "--precision)",
    )
    p.add_argument("--device", default=None, help="cpu and/or cuda (default: cpu, plus cuda when available)")
    p.add_argument("--steps", type=int, default=4, help="SGD steps in the trajectory check (default 4)")
    p.add_argument(
        "--full", action="store_true", help="also run compiling implementations on every config (default: a subset)"
    )
    p.add_argument(
        "--csv",
        default=None,
        help=f"where to write every row, .csv or .csv.gz (default: a new run in {RESULTS}/, named "
        "<time>_<device>_<host>[_<precision>|_per-sample].csv.gz, for the whole registry on the default matrix; "
        "none for a narrowed run)",
    )
    p.add_argument(
        "--variant",
        default=",".join(VARIANTS),
        help="data variants (default: all): normal; large-logits (cross-entropy, the largest logit "
        "+800); exact-zeros (ReLU, pre-activations exactly 0)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds a plug-in may take per case before it is killed and reported (default {DEFAULT_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"torch threads, recorded in the CSV (default {DEFAULT_THREADS}: fastest for these small cases)",
    )
    p.add_argument(
        "--per-sample",
        action="store_true",
        help="check per-sample gradients (N, ...) of the implementations that give them (vmap, loop, batched), "
        "each sample against the oracle's, instead of loss, batch gradients and trajectory",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=list(PRECISIONS),
        help="compute precision (default fp32); tf32 (CUDA), bf16 and fp16 (torch.autocast) run the float32 cases in "
        "that precision, with the "
        "tolerance derived from that format's unit roundoff, for the implementations that support it",
    )
    p.add_argument(
        "--allow-emulated",
        action="store_true",
        help="run a --precision this hardware lacks (torch emulates it in software): checks the arithmetic",
    )
    add_layout_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def add_layout_options(p: argparse.ArgumentParser) -> None:
    """--layout and --loss-fn: how a plug-in (--impl FILE.py:NAME) is written (verification.forms)."""
    p.add_argument(
        "--layout",
        default=None,
        choices=list(FORMS),
        help="the form a plug-in is written in (default: recognised from the names the file defines, else linear: "
        "fn(params, x, t, spec)); cs231n: a TwoLayerNet class; coursera: forward_propagation/backward_propagation; "
        "nnfs: Layer_Dense; epfl: forward_pass/backward_pass; layers: Linear/ReLU/Sigmoid objects; nielsen: a "
        "Network class; module: a function (D, H, C) -> nn.Module, with --loss-fn",
    )
    p.add_argument("--loss-fn", default="", metavar="FILE.py:FN", help="the module layout's loss(output, t)")
    p.add_argument(
        "--bind",
        action="append",
        default=[],
        metavar="ROLE=NAME[(ARGS)]",
        help="the layout's role under another name, a function's arguments in another order (repeatable): "
        "backward_pass=back_ward_pass, 'forward_pass=forward_pass(x, w1, w2, b1, b2)', Linear=MyLinear",
    )
    p.add_argument(
        "--l2-convention",
        default="auto",
        choices=list(L2_CHOICES),
        help="cs231n: how the code writes L2 -- full: reg * sum W^2 (the project's), half: 0.5 * reg * sum W^2 (the "
        "older assignments); auto (default): full, or half when the loss and all four gradients match it exactly",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail the fragile verdicts too (correct gradients, a loss that breaks only at extreme logits)",
    )


@dataclass
class Recognised:
    """The form a run checks its plug-ins as, why, and what the files say of themselves (for the first lines)."""

    form: str
    why: str = ""  # the recognition rule's evidence ("defines forward_pass and backward_pass"), "" when told
    numpy_only: bool = False  # every plug-in file is NumPy code (checked in float64 unless --dtype says)
    defined: Defined | None = None  # what the (first) plug-in file defines: its form's usual net may read it
    notes: list[str] = field(default_factory=list)


def form_of(ref: str) -> tuple[str, str, Defined | None]:
    """(form, evidence, what the file defines) of one plug-in reference: recognised from the file or notebook's names
    (verification.forms.recognise); a module reference (pkg.mod:fn), or a file:NAME that fits no form, is the linear
    form's function. UsageError (one line) when the file cannot be read or fits several forms."""
    from verification.forms import Unrecognised, recognise

    try:
        target, attr = split_ref(ref)
    except PluginError as exc:
        raise UsageError(str(exc)) from None
    if not target.endswith((".py", NOTEBOOK_SUFFIX)):
        return "linear", "", None
    if not Path(target).is_file():
        raise UsageError(f"plug-in file not found: {target}")
    try:
        defined = scan(Path(target))
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    try:
        form, why = recognise(defined)
    except Unrecognised as exc:
        beside = _through_imports(defined, Path(target))
        if beside is not None:
            return beside
        if attr:
            return "linear", "", defined
        raise UsageError(str(exc)) from None
    return form.name, why, defined


def _through_imports(defined: Defined, path: Path) -> tuple[str, str, Defined] | None:
    """The form of a file beside this one that it imports a form's role from (cs231n's two_layer_net.ipynb imports
    TwoLayerNet from cs231n/classifiers/neural_net.py), when that file is there and fits one form."""
    from verification.forms import Unrecognised, recognise
    from verification.forms.core import KNOWN_ROLE_NAMES

    for name, module in defined.imported.items():
        if name not in KNOWN_ROLE_NAMES or module.startswith("."):
            continue
        other = path.resolve().parent.joinpath(*module.split(".")).with_suffix(".py")
        if not other.is_file():
            continue
        try:
            there = scan(other)
            form, why = recognise(there)
        except (SourceError, Unrecognised):
            continue
        return form.name, f"{why} in {other.relative_to(path.resolve().parent)}, which it imports", there
    return None


def _told(ref: str) -> tuple[str, str, Defined | None]:
    """What a plug-in file defines when its form was given (--layout): scanned for its libraries, not recognised."""
    target = split_ref(ref)[0]
    if not target.endswith((".py", NOTEBOOK_SUFFIX)) or not Path(target).is_file():
        return "", "", None
    try:
        return "", "", scan(Path(target))
    except SourceError:
        return "", "", None  # loading it names what is wrong, in the child


def resolve_form(args: argparse.Namespace) -> Recognised:
    """Set args.layout (the form) from the plug-in files when --layout is not given, and args.dtype to float64 for
    NumPy code when --dtype is not given: code is checked as its author wrote it. Several files of different forms
    in one run are a UsageError (one form per run); no plug-in is the registry's run (the linear form)."""
    refs = [r for r in args.impl if is_plugin_ref(r)]
    found = {ref: form_of(ref) if args.layout is None else _told(ref) for ref in refs}
    if args.layout is None:
        forms = sorted({f for f, _, _ in found.values()})
        if len(forms) > 1:
            raise UsageError(
                "the plug-ins are written in different forms ("
                + "; ".join(f"{ref}: {f}" for ref, (f, _, _) in found.items())
                + "): check them one form at a time, or say which with --layout"
            )
        args.layout = forms[0] if forms else "linear"
        why = next((w for _, w, _ in found.values() if w), "")
    else:
        why = ""
    out = Recognised(args.layout, why)
    defined = [d for _, _, d in found.values() if d is not None]
    out.numpy_only = bool(refs) and len(defined) == len(refs) and all(d.numpy_only for d in defined)
    out.defined = args.defined = defined[0] if len(defined) == 1 else None
    if out.numpy_only and args.dtype is None and args.precision == "fp32":
        args.dtype = "float64"
        out.notes.append(
            "checked in float64: NumPy code, at the precision its author wrote it for (--dtype float32,float64 "
            "checks float32 inputs too)"
        )
    return out


def layout_options(args: argparse.Namespace) -> Options:
    """--bind and --l2-convention as the layouts' Options (UsageError on a malformed --bind)."""
    try:
        return Options(parse_bind(args.bind), args.l2_convention)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in parse_list(text, what=what))
    except ValueError as exc:
        raise UsageError(f"--{what}: expected comma-separated integers, got {text!r}") from exc
    if any(v < 1 for v in vals):
        raise UsageError(f"--{what}: values must be >= 1, got {text!r}")
    return vals


def matrix_from_args(args: argparse.Namespace) -> Matrix:
    """Validate every option into a Matrix; UsageError names the bad option."""
    try:
        given = configuration(
            args.layout or "linear", {opt: getattr(args, opt) for opt in CONFIGURATION}, getattr(args, "defined", None)
        )
        hidden = parse_list(given["hidden"], HIDDEN_ACTIVATIONS, "hidden activation")
        output = parse_list(given["output"], OUTPUT_ACTIVATIONS, "output activation")
        loss = parse_list(given["loss"], LOSSES, "loss")
        l2_text, sizes_text = given["l2"], given["sizes"]
        dtypes = parse_list(args.dtype or "float32,float64", DTYPES, "dtype")
        try:
            l2 = tuple(float(v) for v in parse_list(l2_text, what="l2"))
        except ValueError:
            raise ValueError(f"--l2: expected comma-separated numbers, got {l2_text!r}") from None
        if any(not (v >= 0 and v < float("inf")) for v in l2):
            raise ValueError(f"--l2: coefficients must be finite and >= 0, got {l2_text!r}")
        default_devices = "cpu,cuda" if torch.cuda.is_available() else "cpu"
        devices = parse_list(args.device or default_devices, ("cpu", "cuda"), "device")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if "cuda" in devices and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available (torch.cuda.is_available() is False)")
    try:
        sizes = tuple(tuple(int(v) for v in item.split("-")) for item in parse_list(sizes_text, what="sizes"))
    except ValueError:
        raise UsageError(f"--sizes: expected D-H-C[,D-H-C...] with positive integers, got {sizes_text!r}") from None
    if any(len(s) != 3 or min(s) < 1 for s in sizes):
        raise UsageError(f"--sizes: expected D-H-C[,D-H-C...] with positive integers, got {sizes_text!r}")
    if args.steps < 1:
        raise UsageError("--steps must be >= 1")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    try:
        variants = parse_list(args.variant, VARIANTS, "variant")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    batches = _ints(args.batch, "batch")
    m = Matrix(hidden, output, loss, l2, sizes, batches, dtypes, devices, args.steps, full=args.full, variants=variants)
    m.per_sample = args.per_sample
    m.precision, m.allow_emulated = args.precision, args.allow_emulated
    if PRECISIONS[m.precision].reduced:
        check_precision(m, explicit_dtype=args.dtype is not None)
    if not m.specs():
        raise UsageError("no sensible configuration in that selection (cross_entropy needs --output identity)")
    check_memory(m)
    return m


def check_precision(m: Matrix, explicit_dtype: bool) -> None:
    """A low precision needs float32 cases, no --per-sample, and hardware that has it (or --allow-emulated)."""
    if m.per_sample:
        raise UsageError(f"--per-sample checks fp32 per-sample gradients; not with --precision {m.precision}")
    if "float32" not in m.dtypes or (explicit_dtype and "float64" in m.dtypes):
        raise UsageError(f"--precision {m.precision} runs float32 parameters in {m.precision}; use --dtype float32")
    m.dtypes = ("float32",)
    p = PRECISIONS[m.precision]
    elsewhere = [d for d in m.devices if d not in p.devices]  # no emulation makes TF32 exist on a CPU
    if len(elsewhere) == len(m.devices):
        raise UsageError(f"--precision {m.precision}: {p.hardware_reason(elsewhere[0])}")
    m.devices = tuple(d for d in m.devices if d in p.devices)
    if not m.allow_emulated:
        reasons = {d: hardware_reason(m.precision, d) for d in m.devices}
        if all(reasons.values()):
            raise UsageError(
                f"--precision {m.precision}: unsupported here ({'; '.join(f'{d}: {r}' for d, r in reasons.items())}); "
                "--allow-emulated checks the arithmetic anyway"
            )
        m.devices = tuple(d for d, r in reasons.items() if not r)


def case_bytes(spec: NetSpec, n: int, itemsize: int, steps: int, per_sample: bool = False) -> int:
    """The least one case holds at once: the implementation's step and the float64 oracle's, each at least
    NetSpec.floor_bytes (the floor the benchmarks' memory columns are read against), and the other steps - 1
    float64 batches the case keeps for the trajectory (per-sample cases check one batch). A lower bound: a matrix
    it refuses cannot fit, so a refusal is never a false alarm."""
    held = spec.floor_bytes(n, itemsize, per_sample=per_sample) + spec.floor_bytes(n, 8, per_sample=per_sample)
    return held + (0 if per_sample else (steps - 1) * (n * spec.D * 8 + spec.target_bytes(n, 8)))


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(m: Matrix) -> None:
    """Refuse, before the first case, a matrix whose largest case cannot fit in the memory available now."""
    free = available_bytes()
    if free is None:
        return
    itemsize = max(getattr(torch, d).itemsize for d in m.dtypes)
    need, spec, n = max(
        ((case_bytes(s, n, itemsize, m.steps, m.per_sample), s, n) for s in m.specs() for n in m.batches),
        key=lambda c: c[0],
        default=(0, None, 0),
    )
    if spec is not None and need > free:
        raise UsageError(
            f"--batch {n} with size {spec.D}-{spec.H}-{spec.C} needs at least {need / 2**30:.3g} GiB per case, "
            f"but only {free / 2**30:.3g} GiB of memory is available"
        )


def check_writable_csv(path: Path) -> None:
    """Fail before the first case if the CSV cannot be written where asked (UsageError, one line)."""
    if path.is_dir():
        raise UsageError(f"--csv {path}: is a folder, not a file")
    try:
        check_writable(path.parent if str(path.parent) else Path("."), f"--csv {path}: folder")
    except OSError as exc:
        raise UsageError(str(exc)) from None


MATRIX_OPTIONS = (  # not per_sample, precision, allow_emulated: those runs have a default CSV of their own
    "impl",
    "hidden",
    "output",
    "loss",
    "l2",
    "sizes",
    "batch",
    "dtype",
    "device",
    "steps",
    "full",
    "variant",
)


def whole_default_run(args: argparse.Namespace) -> bool:
    """True when every matrix option has its default (the run the committed verification CSV stands for)."""
    defaults = build_parser().parse_args([])
    return all(getattr(args, k) == getattr(defaults, k) for k in MATRIX_OPTIONS)


def csv_path(args: argparse.Namespace, devices: tuple[str, ...]) -> Path | None:
    """Where the rows go: --csv, else a new run file in RESULTS for the whole registry on the default matrix
    (per precision and for --per-sample: each is its own run), else nowhere (a narrowed run is not a result)."""
    if args.csv:
        return Path(args.csv)
    if not whole_default_run(args):
        return None
    tag = "cpu" if devices == ("cpu",) else "cuda-" + torch.cuda.get_device_name(0)
    suffix = "per-sample" if args.per_sample else (args.precision if PRECISIONS[args.precision].reduced else "")
    return RESULTS / f"{new_run_name(tag, suffix)}.csv.gz"


def run_of(path: Path) -> str:
    """The run's name: the CSV's file name without .csv or .csv.gz (as reports names every saved run)."""
    return run_name(path)
