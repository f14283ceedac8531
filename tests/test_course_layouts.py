"""The courses' own forms (EPFL practical 3, UMONS layer objects, cs231n's versions): what their students write that is
a convention passes, and each slip the courses' corrections name fails naming the parameter and the slip in words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verification import check_backprop
from verification.runner import FRAGILE_WORDS, STATEFUL_HINT

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT / "tests" / "plugins" / "layouts"
sys.path.insert(0, str(LAYOUTS))

import cs231n_autograd  # noqa: E402
import cs231n_net  # noqa: E402
import epfl_practical  # noqa: E402
import umons_layers  # noqa: E402

EPFL = {"layout": "epfl", "hidden": "tanh", "output": "tanh", "loss": "sse", "l2": 0.0, "batches": (1, 7)}
LAYERS = {"layout": "layers", "hidden": "sigmoid", "output": "identity", "loss": "cross_entropy", "l2": 0.0}
CS231N = {"layout": "cs231n", "hidden": "relu", "output": "identity", "loss": "cross_entropy"}
SQUARE = {"sizes": [(4, 4, 4)], "batches": (7,)}  # a transposed or misplaced product runs, and is named by its values


def fails_with(source: object, says: list[str], **kwargs: object) -> str:
    with pytest.raises(AssertionError) as info:
        check_backprop(source, **kwargs)
    text = str(info.value)
    assert all(s in text for s in says), text
    return text


# ---- epfl ------------------------------------------------------------------------------------------------------


def test_the_practicals_correction_passes_with_x_as_a_vector_or_a_column() -> None:
    assert check_backprop(epfl_practical, **EPFL).ok
    column = {"forward_pass": epfl_practical.forward_column, "backward_pass": epfl_practical.backward_column}
    assert check_backprop(column, **EPFL).ok


@pytest.mark.parametrize(
    ("backward", "says"),
    [
        ("backward_rebound", ["W1", "dl_dw1 stayed zero: backward_pass rebinds it"]),
        ("backward_dsigma_of_x1", ["W1", "b1", "taken at its output (dsigma(x1)) instead of its input (dsigma(s1))"]),
        ("backward_from_dx2", ["W1", "b1", "from dl/dx2 instead of dl/ds2"]),
        ("backward_overwrites", ["W2", "the gradient of the last sample only"]),
        ("backward_never_zeroed", ["trajectory", STATEFUL_HINT]),
    ],
)
def test_each_slip_the_practical_names_fails_naming_the_parameter_and_the_slip(backward: str, says: list[str]) -> None:
    fails_with(epfl_practical, says, bind={"backward_pass": backward}, **EPFL)


def test_renamed_and_reordered_functions_are_bound_by_one_option() -> None:
    """back_ward_pass's parameters are the layout's names in another order: bound by name alone; fwd's names differ,
    so its order is given in the bind option; the report says how each was called."""
    report = check_backprop(epfl_practical, bind={"backward_pass": "back_ward_pass"}, **EPFL)
    assert report.ok and any("called as back_ward_pass(x, s1, x1" in s for s in report.sources), report.sources
    assert check_backprop(epfl_practical, bind={"forward_pass": "fwd(x, w1, w2, b1, b2)"}, **EPFL).ok
    with pytest.raises(ValueError, match="permutation of w1, b1, w2, b2, x"):
        check_backprop(epfl_practical, bind={"forward_pass": "fwd(x, w1, w2, b1)"}, **EPFL)


def test_a_forward_that_fits_no_way_of_passing_a_sample_says_what_each_gave() -> None:
    def forward_pass(w1, b1, w2, b2, x):
        return w1 @ x @ w2  # wrong whichever way x comes

    fails_with({"forward_pass": forward_pass, "backward_pass": epfl_practical.backward_pass},
               ["forward_pass fits none of the ways a sample is passed: with x as a vector (D,)",
                "with x as a column (D, 1)", "with x as a row (1, D)"], **EPFL)  # fmt: skip


def test_the_epfl_layout_needs_both_functions() -> None:
    with pytest.raises(ValueError, match=r"the epfl form needs forward_pass, backward_pass"):
        check_backprop(epfl_practical.forward_pass, **EPFL)
    with pytest.raises(ValueError, match="no backward_pass"):
        check_backprop({"forward_pass": epfl_practical.forward_pass}, **EPFL)


# ---- layers ----------------------------------------------------------------------------------------------------


def test_the_course_layers_pass_in_either_weight_orientation_with_and_without_a_net() -> None:
    assert check_backprop(umons_layers, **LAYERS, batches=(1, 7)).ok
    assert check_backprop(umons_layers, **{**LAYERS, "hidden": "relu"}, batches=(7,)).ok
    assert check_backprop(umons_layers, bind={"Linear": "LinearNNShaped"}, **LAYERS, batches=(7,)).ok
    no_net = {k: getattr(umons_layers, k) for k in ("Linear", "Sigmoid")}
    assert check_backprop(no_net, **LAYERS, batches=(7,)).ok


@pytest.mark.parametrize(
    ("bind", "sizes", "says"),
    [
        ({"Linear": "CachesOutput"}, [(5, 4, 3)], ["W1", "cached its output instead of its input"]),
        ({"Linear": "CachesOutput"}, [(4, 4, 4)], ["W1", "uses its output where it needs its input"]),
        ({"Sigmoid": "SigmoidOfOutput"}, [(5, 4, 3)], ["W1", "b1", "taken at its output (dsigma(x1))"]),
        ({"Linear": "BiasNotSummed"}, [(5, 4, 3)], ["b1", "one per sample: not summed over the batch"]),
        ({"Linear": "NoWeightInDx"}, [(4, 4, 4)], ["W1", "missing the weight (dx = dupstream"]),
    ],
)
def test_each_layer_slip_fails_naming_the_parameter_and_the_slip(
    bind: dict[str, str], sizes: list[tuple[int, int, int]], says: list[str]
) -> None:
    fails_with(umons_layers, says, bind=bind, sizes=sizes, batches=(7,), **LAYERS)


def test_an_activation_class_the_code_lacks_makes_those_cases_unsupported_not_failed() -> None:
    report = check_backprop(umons_layers, **{**LAYERS, "hidden": ("sigmoid", "tanh")}, batches=(7,), dtype="float64")
    assert report.ok and "unsupported" in report.verdict
    assert "no Tanh class: the tanh cases need one" in set(report.rows["problem"])


# ---- cs231n's versions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("net", "quantities", "cause"),
    [
        ("LogOfSoftmax", {"loss"}, "the log of an underflowed probability"),
        ("NoMaxShift", {"loss", "W1", "b1", "W2", "b2", "trajectory"}, "no max shift in the softmax"),
    ],
)
def test_code_right_on_every_ordinary_input_is_fragile_at_the_large_logits_with_its_cause(
    net: str, quantities: set[str], cause: str
) -> None:
    """Right everywhere but at a logit of 800 -- a max-shifted softmax then -log(p[y]) (the loss alone inf), or no max
    shift at all (NaN everywhere there): exit 0 with the fragile verdict and its cause in words; strict fails it."""
    report = check_backprop(getattr(cs231n_net, net), **CS231N)
    assert report.ok and "FRAGILE in" in report.verdict and cause in report.verdict, report.verdict
    fragile = report.rows[report.rows["status"] == "fragile"]
    assert set(fragile["quantity"]) <= quantities and "loss" in set(fragile["quantity"])
    assert set(fragile["variant"]) == {"large-logits"}
    assert all(FRAGILE_WORDS in p and cause in p for p in fragile["problem"])
    fails_with(getattr(cs231n_net, net), ["loss", cause], strict=True, **CS231N)


@pytest.mark.parametrize(("net", "words"), [
    (cs231n_net.LogEps, "log(p + 1e-7) in the loss, a guard against log(0): accepted, the gradients the exact loss's"),
    (cs231n_autograd.AutogradLogEps,
     "log(p + 1e-8) in the loss, a guard against log(0): accepted, the gradients the guarded loss's"),
])  # fmt: skip
def test_a_guard_inside_the_log_is_a_convention_said_and_a_loss_slip_is_not(net: type, words: str) -> None:
    """-log(p + eps), the loss textbooks write against log(0): its every number matches the oracle's with that eps
    (estimated, then the whole case judged again), so it passes, said; the gradients either the exact loss's (a
    hand-written backward) or the guarded one's (autograd through it). A loss off by another slip still fails."""
    report = check_backprop(net, **CS231N)
    assert report.ok and any(words in s for s in report.sources), (report.verdict, report.sources)
    fails_with(cs231n_net.OverNPlus1, ["loss"], **CS231N)


def test_a_clip_of_p_passes_as_a_guard_only_as_small_as_one() -> None:
    """-log(max(p, c)) is exact wherever p > c, and the ordinary data's p never falls below ~0.05: only the
    logit-800 data tells c. nnfs's 1e-7 is a guard (fragile there, said); 1e-2 caps the loss and fails, naming c."""
    report = check_backprop(cs231n_net.Clip1e7, **CS231N)
    assert report.ok and "FRAGILE" in report.verdict, report.verdict
    fails_with(cs231n_net.Clip1e2, ["capped, as if p were clipped at 1e-2"], **CS231N)


def test_the_net_is_kept_across_calls_and_its_parameters_written_where_it_reads_them() -> None:
    """One object per case and shape, as a training loop keeps one net, the parameters written into the arrays it
    holds: a velocity kept between calls fails the trajectory by name, a training step inside loss() fails as a
    change to the caller's W1, and weights read through attributes aliasing params (right in training) pass."""
    fails_with(cs231n_net.MomentumKept, ["trajectory", "state persists between calls"], **CS231N, batches=(7,))
    fails_with(cs231n_net.StepInsideLoss, ["loss(X, y, reg) changed params['W1'] in place"], **CS231N, batches=(7,))
    assert check_backprop(cs231n_net.AttributeAliases, **CS231N, batches=(7,)).ok


def test_the_half_l2_convention_is_found_by_its_numbers_declared_or_not() -> None:
    """Loss and all four gradients matching 0.5 * reg * sum W^2 exactly: a pass, said first; declared, the same; told
    the project's convention explicitly, a failure naming the convention it matches."""
    assert check_backprop(cs231n_net.HalfConvention, l2_convention="half", **CS231N).ok
    report = check_backprop(cs231n_net.HalfConvention, **CS231N)
    assert report.ok and any("the older cs231n L2 convention 0.5 * reg * sum W^2" in s for s in report.sources)
    text = fails_with(
        cs231n_net.HalfConvention, ["W1", "matches exactly the L2 term 0.5 * l2 * sum W^2"], l2_convention="full",
        **CS231N,
    )  # fmt: skip
    assert "L2 gradient halved" not in text
    # a halved gradient under the full loss is a bug, not the convention: named as before
    fails_with(cs231n_net.HalfReg, ["W1", "L2 gradient halved"], sizes=[(5, 4, 3)], batches=(7,), **CS231N)


def test_numpy_float64_gradients_for_float32_inputs_are_a_convention() -> None:
    report = check_backprop(cs231n_net.Float64Accumulators, **CS231N, batches=(7,))
    assert report.ok and (report.rows["status"] == "ok").all()


def test_gradients_narrower_than_the_inputs_make_those_cases_unsupported() -> None:
    class Float32Always(cs231n_net.TwoLayerNet):
        def loss(self, X, y=None, reg=0.0):
            loss, grads = super().loss(X.astype("float32"), y, reg)
            return loss, {k: v.astype("float32") for k, v in grads.items()}

    report = check_backprop(Float32Always, **CS231N, batches=(7,), variants="normal")
    why = set(report.rows.loc[report.rows["status"] == "unsupported", "problem"])
    assert report.ok and set(report.rows.loc[report.rows["status"] == "unsupported", "dtype"]) == {"float64"}
    assert any("computes in float32" in w for w in why), why


def test_eecs498s_cuda_default_constructor_and_function_run_on_the_checkers_device() -> None:
    """TwoLayerNet(..., dtype=torch.float32, device='cuda') on a CPU-only machine gets the case's device and dtype;
    the module-level nn_forward_backward(params, X, y, reg) is the same layout."""
    assert check_backprop(cs231n_net.EECS498Net, **CS231N, batches=(7,)).ok
    assert check_backprop(cs231n_net.nn_forward_backward, **CS231N, batches=(7,)).ok


def test_the_cli_takes_a_layout_bind_and_l2_convention() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", str(LAYOUTS / "epfl_practical.py"), "--layout", "epfl",
         "--bind", "backward_pass=back_ward_pass", "--hidden", "tanh", "--output", "tanh", "--loss", "sse",
         "--l2", "0", "--batch", "7", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and "OK:" in r.stdout and "called as back_ward_pass" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "verification", "--impl", f"{LAYOUTS / 'cs231n_net.py'}:HalfConvention",
         "--layout", "cs231n", "--l2-convention", "half", "--hidden", "relu", "--loss", "cross_entropy",
         "--output", "identity", "--batch", "7", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and "FRAGILE in" in r.stdout, r.stdout + r.stderr
