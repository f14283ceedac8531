"""The CUDA-graph bookkeeping of the "triton" implementation, on the CPU: when a call is captured, which graph a call
replays, when graphs are dropped, what a failed or nested capture does. torch.cuda.CUDAGraph and torch.cuda.graph
are replaced by a recorder with a graph's semantics -- a capture records each launch with its tensors' storage as
it is then and runs nothing; a replay relaunches the records -- and the kernels run through triton's interpreter
on tensors that say they are CUDA. Every graphed result is compared with eager launches, bit for bit (the same
kernels on the same values). tests/test_triton.py::test_cuda_graphs_replay_the_eager_launches is the GPU's check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from impls.base import SGD
from impls.spec import NetSpec, init_params, make_batch

triton_fused = pytest.importorskip("impls.triton_fused")
if triton_fused.IMPORT_ERROR or not triton_fused.INTERPRETED:
    pytest.skip("needs triton's interpreter (TRITON_INTERPRET=1, set by tests/conftest.py)", allow_module_level=True)
CLS = triton_fused.TritonFused
KERNELS = ("_tiny_train_kernel", "_train_kernel", "_rows_kernel", "_dw1_kernel", "_update_kernel")
TINY = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")  # rumelhart's net: the register kernel
LARGE = NetSpec(9, 5, 3, "tanh", "identity", "cross_entropy", l2=0.01)  # three launches per step from N = 256


class Cuda(torch.Tensor):
    """A CPU tensor that says it is on CUDA, so the implementation takes its graph path."""

    @property
    def is_cuda(self) -> bool:
        return True


def _plain(a: object) -> object:
    return a.as_subclass(torch.Tensor) if isinstance(a, torch.Tensor) else a


class Recorder:
    """Graph semantics on the CPU: capture records launches (their tensors alias the storage they have now)."""

    def __init__(self) -> None:
        self.capturing: list[list] = []
        self.fail: str = ""  # a capture that raises this
        self.captures = 0

    def kernel(self, jit: object) -> object:
        recorder = self

        class Launch:
            def __getitem__(self, grid: tuple) -> object:
                def call(*args: object, **kw: object) -> None:
                    args = tuple(_plain(a) for a in args)
                    if recorder.capturing:
                        recorder.capturing[-1].append((jit, grid, args, kw))
                    else:
                        jit[grid](*args, **kw)

                return call

        return Launch()

    def graph_class(self) -> type:
        class Graph:
            def __init__(self) -> None:
                self.records: list = []

            def replay(self) -> None:
                for jit, grid, args, kw in self.records:
                    jit[grid](*args, **kw)

        return Graph

    @contextlib.contextmanager
    def graph(self, g: object) -> Iterator[None]:
        self.capturing.append(g.records)
        try:
            if self.fail:
                raise RuntimeError(self.fail)
            yield
            self.captures += 1
        finally:
            self.capturing.pop()


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    r = Recorder()
    for name in KERNELS:
        monkeypatch.setattr(triton_fused, name, r.kernel(getattr(triton_fused, name)))
    monkeypatch.setattr(torch.cuda, "CUDAGraph", r.graph_class())
    monkeypatch.setattr(torch.cuda, "graph", r.graph)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: bool(r.capturing))
    monkeypatch.setattr(triton_fused, "tf32_matmuls", lambda: False)  # reads torch's CUDA matmul flags: not here
    return r


def _pair(spec: NetSpec) -> tuple[CLS, CLS]:
    """The same net twice: one through graphs, one launching eagerly."""
    p = init_params(spec)
    graphed, eager = CLS(spec, p, SGD(0.1, 0.9)), CLS(spec, p, SGD(0.1, 0.9))
    eager.GRAPHS = False
    return graphed, eager


def _batch(spec: NetSpec, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x, t = make_batch(spec, n, seed=seed)
    return x.as_subclass(Cuda), t.as_subclass(Cuda)


def _same_step(graphed: CLS, eager: CLS, x: torch.Tensor, t: torch.Tensor) -> None:
    (la, ga), (lb, gb) = graphed.step(x, t), eager.step(x, t)
    assert torch.equal(_plain(la), _plain(lb)), (la, lb)
    assert all(torch.equal(ga[q], gb[q]) for q in ga)


@pytest.mark.parametrize(("spec", "n"), [(TINY, 64), (LARGE, 300)], ids=["tiny", "three-launches"])
def test_a_repeated_call_is_run_then_captured_then_replayed(rec: Recorder, spec: NetSpec, n: int) -> None:
    """Call 1 runs eagerly (triton compiles), call 2 is captured and replayed, later calls replay; a graph reads x
    where it lies, so an in-place change is seen; the replays count as the launches they hold."""
    graphed, eager = _pair(spec)
    x, t = _batch(spec, n)
    for k in range(5):
        if k == 3:
            x.mul_(0.5)
        _same_step(graphed, eager, x, t)
    assert rec.captures == 1 and graphed.replays == 4 and graphed.launched == eager.launched
    assert not graphed.graph_failure


def test_train_losses_survive_later_replays(rec: Recorder) -> None:
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    runs = [graphed.train(x, t, 5) for _ in range(4)]  # eager, captured + replayed, replayed, replayed
    assert graphed.replays == 3
    for k, losses in enumerate(runs):
        assert torch.equal(_plain(losses), _plain(eager.train(x, t, 5))), k


def test_new_storage_under_the_same_tensor_is_a_new_call(rec: Recorder) -> None:
    """x.data = ... swaps x's storage without bumping its version: the graph of the old storage must not run."""
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    for _ in range(3):
        _same_step(graphed, eager, x, t)
    x.data = torch.randn(64, 6)
    _same_step(graphed, eager, x, t)
    assert graphed.replays == 2  # the new storage ran eagerly


def test_alternating_calls_are_each_captured(rec: Recorder) -> None:
    """Two batches (or step and train) in turn: each is captured on its second call, not only back-to-back ones."""
    graphed, eager = _pair(TINY)
    (x1, t1), (x2, t2) = _batch(TINY, 64, seed=1), _batch(TINY, 64, seed=2)
    for _ in range(4):
        _same_step(graphed, eager, x1, t1)
        _same_step(graphed, eager, x2, t2)
    assert rec.captures == 2 and graphed.replays == 6


def test_step_and_train_on_one_batch_are_two_calls(rec: Recorder) -> None:
    """The steps per launch are part of a call: a step after a captured train(x, t, 5) is one step."""
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    for _ in range(3):
        _same_step(graphed, eager, x, t)
        assert torch.equal(_plain(graphed.train(x, t, 5)), _plain(eager.train(x, t, 5)))
    assert rec.captures == 2 and graphed.replays == 4 and graphed.launched == eager.launched


def test_new_storage_for_the_targets_is_checked_and_run(rec: Recorder) -> None:
    """t.data = ... (no version bump): its labels are checked before any kernel reads them, and a valid new t
    runs on its own values."""
    spec = NetSpec(4, 10, 3, "relu", "identity", "cross_entropy", l2=0.05)  # the cs231n toy net: labels
    graphed, eager = _pair(spec)
    x, t = _batch(spec, 5)
    for _ in range(3):
        _same_step(graphed, eager, x, t)
    t.data = torch.full((5,), 10**6)
    with pytest.raises(triton_fused.InputError, match="class labels"):
        graphed.step(x, t)
    t.data = torch.tensor([2, 1, 0, 2, 1])
    for _ in range(3):
        _same_step(graphed, eager, x, t)


def test_lr_sgd_and_the_switch_are_part_of_every_call(rec: Recorder) -> None:
    """set_lr, a new SGD assigned, and GRAPHS turned off: the next calls follow eager launches with the same."""
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    for _ in range(3):
        _same_step(graphed, eager, x, t)
    graphed.set_lr(0.3), eager.set_lr(0.3)
    for _ in range(3):
        _same_step(graphed, eager, x, t)
    graphed.sgd = eager.sgd = SGD(0.3, 0.5)  # momentum alone changed
    for _ in range(3):
        _same_step(graphed, eager, x, t)
    replays = graphed.replays
    graphed.GRAPHS = False
    _same_step(graphed, eager, x, t)
    assert graphed.replays == replays and graphed.launched == eager.launched


def test_a_failed_capture_warns_once_and_launches_eagerly(rec: Recorder) -> None:
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    rec.fail = "operation not permitted when stream is capturing"
    _same_step(graphed, eager, x, t)
    with pytest.warns(UserWarning, match="capture failed, launching eagerly .*not permitted"):
        _same_step(graphed, eager, x, t)
    for _ in range(2):
        _same_step(graphed, eager, x, t)
    assert graphed.graph_failure.startswith("RuntimeError") and graphed.replays == 0
    assert graphed.launched == eager.launched


def test_inside_the_callers_capture_the_kernels_join_their_graph(rec: Recorder) -> None:
    """A caller capturing impl.step in their own graph: no capture of ours inside theirs (that would invalidate
    it); the launches are recorded into their graph and run when they replay it."""
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    _same_step(graphed, eager, x, t)  # eager (compiles), as a caller warms up before capturing
    theirs = torch.cuda.CUDAGraph()
    with torch.cuda.graph(theirs):
        graphed.step(x, t)
    assert rec.captures == 1 and not graphed.replays and not graphed.graph_failure
    theirs.replay()
    eager.step(x, t)
    for q, v in graphed.params().items():
        assert torch.equal(v, eager.params()[q]), q


def test_callers_with_ever_new_batches_keep_at_most_max_graphs(rec: Recorder) -> None:
    graphed, eager = _pair(TINY)
    for seed in range(CLS.MAX_GRAPHS + 3):
        x, t = _batch(TINY, 64, seed=seed)
        for _ in range(2):
            _same_step(graphed, eager, x, t)
    assert len(graphed._graphs) <= CLS.MAX_GRAPHS and len(graphed._seen_once) <= CLS.MAX_GRAPHS
    assert graphed.launched == eager.launched  # dropped graphs' replays stay counted


def test_non_contiguous_inputs_never_run_a_graph(rec: Recorder) -> None:
    """x.contiguous() of a transposed batch is a temporary: a graph of it would read freed memory."""
    graphed, eager = _pair(TINY)
    x, t = _batch(TINY, 64)
    xt = x.t().contiguous().t()  # the same values, column-major
    for _ in range(3):
        _same_step(graphed, eager, xt, t)
    assert rec.captures == 0 and graphed.replays == 0


def test_the_replay_overhead_script_times_replays() -> None:
    """benchmarks/replay_overhead.py (README's per-call estimate quotes it) times calls that replay a graph."""
    from benchmarks.replay_overhead import measure

    seconds = measure(calls=200, repeat=1)  # raises unless the timed calls are replays
    assert 0 < seconds < 1e-3


@pytest.mark.parametrize(
    ("calls", "buffer"),
    [  # (N, calls, whether the graphs kept before must be gone: N replaced the buffer they read)
        (((40, 3, False), (80, 3, True), (40, 3, False)), "scratch"),  # it only grows
        (((300, 1, False), (400, 3, False), (300, 3, True)), "plan"),  # a plan per N; 300 is captured at once
    ],
    ids=["scratch", "plan"],
)
def test_graphs_that_read_a_replaced_buffer_are_dropped(rec: Recorder, calls: tuple, buffer: str) -> None:
    """A larger batch reallocates da1's scratch (tiled kernel); another large N makes a new plan of partial-sum
    buffers. Graphs that read the old ones are dropped before the buffer goes (the CPU recorder keeps freed
    storage alive, so this is checked on the graphs kept), and the launch counts stay exact -- also when the
    batch that needs a new plan is captured on its first call after the change (seen once before it)."""
    graphed, eager = _pair(LARGE)
    batches = {n: _batch(LARGE, n, seed=n) for n, _, _ in calls}  # the same tensors when an N comes back
    for n, repeat, drops in calls:
        x, t = batches[n]
        kept = dict(graphed._graphs)
        for _ in range(repeat):
            _same_step(graphed, eager, x, t)
        if drops:
            assert kept and not set(kept) & set(graphed._graphs), f"a graph of the old {buffer} survived"
    assert graphed.launched == eager.launched


def test_buffers_a_callers_graph_captured_are_never_freed(rec: Recorder) -> None:
    """After a caller captured our launches in a graph of theirs, a larger batch must not free the scratch their
    graph reads (we cannot know when their graph is gone): the old buffer is kept."""
    graphed, _ = _pair(LARGE)
    x, t = _batch(LARGE, 40)
    graphed.step(x, t)
    with torch.cuda.graph(torch.cuda.CUDAGraph()):
        graphed.step(x, t)
    old = graphed._scratch
    graphed.step(*_batch(LARGE, 80))
    assert graphed._scratch is not old and any(old is b for kept in graphed._retired for b in kept)
