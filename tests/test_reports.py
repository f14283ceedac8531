"""python -m reports: tidy CSV, plots, summary from saved runs; bad input; determinism; the compare gate."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from impls.spec import NetSpec
from reports.__main__ import main
from reports.atomic import atomic_write, atomic_write_text
from reports.compare import parse_threshold
from reports.plots import crossover
from reports.record import MEMORY_KINDS, SCHEMA, VerificationRecord, read_verification, write_verification

ROOT = Path(__file__).resolve().parents[1]


SPEC = NetSpec(D=784, H=30, C=10, hidden="sigmoid", output="identity", loss="sse")
#: a fake row's memory relative to its floor: the loop holds one sample's activations, numpy_flat's meter has no
#: reading (the reason is shown instead), the rest a batched step's
HELD = {"loop": 0.6, "batched": 1.2, "numpy_flat": None}


def _memory(impl: str, n: int) -> dict:
    """The memory fields a benchmark row of a stepping kind carries (peak + resident = HELD x floor)."""
    floor = SPEC.floor_bytes(n, 4)
    share = HELD.get(impl, 1.0)
    if share is None:
        return {"floor_bytes": floor, "memory_reason": "a fixture row without a reading"}
    held = round(share * floor)
    return {"floor_bytes": floor, "peak_bytes": held - held // 2, "resident_bytes": held // 2}


def _bench(impl: str, device: str, workload: str, n: int, median: float, kind: str = "batch_sweep", **extra) -> dict:
    flops = 4 * n * 784 * 30 + 6 * n * 30 * 10
    memory = _memory(impl, n) if kind in MEMORY_KINDS else {}
    return {
        "name": f"test_step[{workload}-{impl}-{device}-fp32]",
        "stats": {
            "min": median * 0.95,
            "max": median * 1.3,
            "mean": median * 1.02,
            "median": median,
            "iqr": median * 0.03,
            "rounds": 50,
            "stddev": median * 0.02,
        },
        "extra_info": {
            "impl": impl,
            "device": device,
            "workload": workload,
            "kind": kind,
            "N": n,
            "D": 784,
            "H": 30,
            "C": 10,
            "precision": "fp32",
            "reduced": False,
            "flops": flops,
            "bytes": 2 * n * 784 * 4,
            "gflops": flops / median / 1e9,
            "threads": 2,
            "large": n >= 8192,
            "schema": SCHEMA,
            **memory,
            **extra,
        },
    }


def _run(device: str, scale: float, gpu: str | None = None) -> dict:
    rows = []
    for n in (1, 16, 256, 4096):
        for impl, base in (("loop", 2e-5 * n + 1e-4), ("batched", 1e-7 * n + 6e-5), ("numpy_flat", 1e-7 * n + 2e-5)):
            if device == "cuda" and impl == "numpy_flat":
                continue
            if impl == "loop" and n > 1024:
                continue
            roles = {"rank": {"loop": 0, "batched": 40, "numpy_flat": 80}[impl], "baseline": impl == "loop"}
            rows.append(_bench(impl, device, f"batch-{n}", n, base * scale, **roles))
    rows.append(_bench("batched", device, "epfl", 1000, 1e-3 * scale, kind="named", large=True, rank=40))
    rows.append(_bench("batched", device, "epfl", 1000, 0.09 * scale, kind="train", steps=100, rank=40))
    rows.append(
        {
            "name": "test_gemm_peak",
            "stats": {"median": 0.01, "min": 0.01, "mean": 0.01, "iqr": 0.0, "rounds": 5},
            "extra_info": {
                "kind": "peak_gemm",
                "device": device,
                "workload": "square-2048",
                "product": "square",
                "gflops": 180.0 / scale,
                "impl": "torch.mm",
                "schema": SCHEMA,
            },
        }
    )
    rows.append(
        {
            "name": "test_memory_bandwidth",
            "stats": {"median": 0.01, "min": 0.01, "mean": 0.01, "iqr": 0.0, "rounds": 5},
            "extra_info": {
                "kind": "peak_bandwidth",
                "device": device,
                "workload": "copy-256MiB",
                "gbs": 50.0,
                "impl": "Tensor.copy_",
                "schema": SCHEMA,
            },
        }
    )
    info = {
        "schema": SCHEMA,
        "torch": "2.13.0",
        "cpu_model": "Test CPU",
        "torch_threads": 2,
        "blas": "mkl",
        "commit": "abc1234",
        "date": "2026-11-24T09:00:00+00:00",
    }
    if gpu:
        info["gpu_name"] = gpu
    return {
        "machine_info": {"node": "testhost", "twolayer": info},
        "commit_info": {},
        "datetime": "2026-11-24T09:00:00",
        "benchmarks": rows,
        "version": "5.1.0",
    }


def write_ver(path: Path, run: str, rows: list[tuple[str, str, float, float]], device: str = "cpu") -> Path:
    """A verification run file of (impl, status, max_rel_err, tol) rows, written as the verifier writes one."""
    case = dict(check="batch", hidden="sigmoid", output="identity", loss="sse", l2=0.0, D=5, H=4, C=3, N=7)
    run_info = dict(run=run, commit="abc1234", torch="2.13.0", cpu_model="Test CPU")
    recs = [
        VerificationRecord(
            impl=impl,
            **case,
            dtype="float32",
            precision="fp32",
            device=device,
            variant="normal",
            threads=1,
            quantity="W1",
            status=status,
            max_abs_err=err,
            max_rel_err=err,
            tol=tol,
            **run_info,
            gpu_name="Test GPU" if device == "cuda" else "",
        )
        for impl, status, err, tol in rows
    ]
    return write_verification(path, recs)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "cpu.json").write_text(json.dumps(_run("cpu", 1.0)))
    (raw / "cuda.json").write_text(json.dumps(_run("cuda", 0.2, gpu="Test GPU")))
    return raw


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_report_writes_csv_plots_and_summary(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = _digest(runs)
    ver = write_ver(tmp_path / "v.csv.gz", "v", [("batched", "ok", 1e-8, 1e-6)])
    assert main([str(runs), "--out", str(out), "--verification", str(ver)]) == 0
    df = pd.read_csv(out / "benchmarks.csv")
    assert {
        "run",
        "impl",
        "device",
        "workload",
        "N",
        "min",
        "median",
        "mean",
        "iqr",
        "rounds",
        "gflops",
        "roofline_eff",
        "machine",
        "torch",
        "commit",
        "date",
    } <= set(df.columns)
    assert set(df["device"]) == {"cpu", "cuda"}
    epfl = df[(df["workload"] == "epfl") & (df["device"] == "cpu")].iloc[0]
    assert epfl["peak_gflops"] == 180.0 and epfl["roofline_eff"] == pytest.approx(epfl["roofline_s"] / 1e-3)
    pngs = {p.name for p in (out / "plots").glob("*.png")}
    assert {"time_vs_batch.png", "speedup_over_loop.png", "cpu_vs_cuda.png", "efficiency.png"} <= pngs
    assert {"memory_vs_batch.png", "time_memory.png"} <= pngs
    stepping = df[df["kind"].isin(MEMORY_KINDS)]
    for impl, share in HELD.items():  # measured / floor as the rows were written; no reading: its reason, no zero
        rows = stepping[stepping["impl"] == impl]
        assert len(rows) and rows["floor_bytes"].notna().all(), impl
        if share is None:
            assert rows["peak_bytes"].isna().all() and (rows["memory_note"] == "a fixture row without a reading").all()
        else:
            assert rows["memory_over_floor"].to_numpy() == pytest.approx(share, rel=1e-3), impl
    summary = (out / "README.md").read_text()
    assert (
        "Test GPU" in summary and "Test CPU" in summary and "![Time vs batch size](plots/time_vs_batch.png)" in summary
    )
    assert "CUDA's best step (cuda: Test GPU) beats the CPU's best (cpu: Test CPU) from N = " in summary
    assert "both ran on one host" in summary  # the two runs share CPU model, core count and host name
    assert "| cpu: Test CPU | epfl | batched | 100 | 900 | 1,000 | 1.11× |" in summary  # a train row: per step
    assert "| cpu: Test CPU | 16 | 420 | 21.6 | 19× |" in summary  # loop vs best: the baseline by its record
    assert "| cpu: Test CPU | batch | fp32 | batched | 1 | 0 | 0 | 1 | 0 | 0.01 |" in summary
    memory = summary[summary.index("## Memory") :]
    assert "| batched | 4.15 MiB (1.20×) |" in memory and "| floor (batched step) | 3.45 MiB |" in memory
    assert _digest(runs) == before, "raw runs must never be modified"
    assert not list(out.rglob("*.tmp"))


def test_output_is_deterministic(runs: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    main([str(runs), "--out", str(a)])
    main([str(runs), "--out", str(b)])
    assert _digest(a) == _digest(b)


def test_corrupt_truncated_and_foreign_json_are_skipped_by_name(runs: Path, tmp_path: Path, capsys) -> None:
    (runs / "truncated.json").write_text(json.dumps(_run("cpu", 1.0))[:200])
    (runs / "foreign.json").write_text(json.dumps({"hello": "world"}))
    (runs / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    assert main([str(runs), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "skipping" in err and "truncated.json: corrupt or truncated JSON" in err
    assert "foreign.json: not a pytest-benchmark run" in err and "binary.json" in err


def test_no_usable_input_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{")
    r = subprocess.run(
        [sys.executable, "-m", "reports", str(tmp_path), "--out", str(tmp_path / "o")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2 and "error: no usable pytest-benchmark JSON found" in r.stderr
    assert "Traceback" not in r.stderr


def test_compare_exits_1_on_a_planted_regression(runs: Path, tmp_path: Path, capsys) -> None:
    base = runs / "cpu.json"
    slow = copy.deepcopy(json.loads(base.read_text()))
    slow["benchmarks"][3]["stats"]["median"] *= 1.5
    (tmp_path / "slow.json").write_text(json.dumps(slow))
    assert main(["compare", str(base), str(tmp_path / "slow.json"), "--threshold", "10%"]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "REGRESSION: 1 row(s)" in out
    assert main(["compare", str(base), str(base)]) == 0
    assert main(["compare", str(base), str(tmp_path / "slow.json"), "--threshold", "60%"]) == 0


def test_compare_across_devices_is_a_table_not_a_gate(runs: Path, capsys) -> None:
    assert main(["compare", str(runs / "cpu.json"), str(runs / "cuda.json")]) == 0
    out = capsys.readouterr().out
    assert "device comparison (cpu vs cuda)" in out and "new device faster" in out


def test_compare_bad_threshold_and_missing_input(runs: Path, tmp_path: Path, capsys) -> None:
    assert main(["compare", str(runs / "cpu.json"), str(runs / "cpu.json"), "--threshold", "fast"]) == 2
    assert main(["compare", str(tmp_path / "nothing"), str(runs / "cpu.json")]) == 2
    assert parse_threshold("10%") == pytest.approx(0.1) == parse_threshold("0.1") == parse_threshold("10")


def test_crossover_prefers_the_gpu_hosts_own_cpu_and_says_when_machines_differ(runs: Path, tmp_path: Path) -> None:
    """Two CPU runs: another machine (faster, more batch sizes would not matter) and the GPU's own host. The
    crossover compares the GPU with its own host's CPU; without that run it says the machines differ."""
    other = _run("cpu", 0.5)
    other["machine_info"]["twolayer"]["cpu_model"] = "Other CPU"
    (runs / "other.json").write_text(json.dumps(other))
    out = tmp_path / "o"
    assert main([str(runs), "--out", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert "beats the CPU's best (cpu: Test CPU)" in text and "both ran on one host" in text
    (runs / "cpu.json").unlink()
    assert main([str(runs), "--out", str(out)]) == 0
    text = (out / "README.md").read_text()
    assert "beats the CPU's best (cpu: Other CPU)" in text and "from different machines" in text


def test_gzipped_runs_read_like_plain_ones(runs: Path, tmp_path: Path) -> None:
    import gzip

    (runs / "cuda.json.gz").write_bytes(gzip.compress((runs / "cuda.json").read_bytes()))
    (runs / "cuda.json").unlink()
    (runs / "broken.json.gz").write_bytes(b"\x1f\x8b not gzip")
    out = tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-m", "reports", str(runs), "--out", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0 and "run cuda (" in r.stdout, r.stdout + r.stderr
    assert "skipping" in r.stderr and "broken.json.gz: corrupt gzip" in r.stderr


def test_verification_runs_round_trip_and_the_newest_per_hardware_is_shown(runs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ver"
    write_ver(folder / "2026-01-01T000000_cpu_h.csv.gz", "2026-01-01T000000_cpu_h", [("batched", "ok", 5e-8, 1e-6)])
    write_ver(folder / "2026-02-01T000000_cpu_h.csv", "2026-02-01T000000_cpu_h", [("batched", "ok", 2e-8, 1e-6)])
    write_ver(folder / "c.csv.gz", "c", [("cudagraph", "ok", 3e-8, 1e-6)], device="cuda")
    (folder / "old.csv").write_text("impl,loss_fn,status\nbatched,sse,ok\n")  # schema 1: no provenance
    back = read_verification(folder / "2026-01-01T000000_cpu_h.csv.gz")
    assert back["status"].tolist() == ["ok"] and back["max_rel_err"].iloc[0] == 5e-8 and back["problem"].iloc[0] == ""
    out = tmp_path / "o"
    r = subprocess.run(
        [sys.executable, "-m", "reports", str(runs), "--out", str(out), "--verification", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "old.csv: not a twolayer verification CSV of this version" in r.stderr
    text = (out / "README.md").read_text()
    assert "| cpu: Test CPU | batch | fp32 | batched | 1 | 0 | 0 | 1 | 0 | 0.02 |" in text  # the newer CPU run
    assert "| cuda: Test GPU | batch | fp32 | cudagraph | 1 | 0 | 0 | 1 | 0 | 0.03 |" in text
    assert "cpu: Test CPU, batch, fp32: run 2026-02-01T000000_cpu_h (commit abc1234)" in text


def test_a_verification_file_of_two_runs_or_unknown_status_is_refused(tmp_path: Path) -> None:
    from reports.record import RecordError

    p = write_ver(tmp_path / "a.csv", "a", [("batched", "ok", 1e-8, 1e-6), ("loop", "ok", 1e-8, 1e-6)])
    df = pd.read_csv(p)
    df.loc[1, "run"] = "b"
    df.to_csv(p, index=False)
    with pytest.raises(RecordError, match="more than one run"):
        read_verification(p)
    df.loc[1, ["run", "status"]] = ["a", "passed"]
    df.to_csv(p, index=False)
    with pytest.raises(RecordError, match="unknown status 'passed'"):
        read_verification(p)


def test_crossover() -> None:
    cpu = pd.Series({1: 10.0, 16: 20.0, 256: 100.0, 4096: 1000.0})
    cuda = pd.Series({1: 50.0, 16: 30.0, 256: 60.0, 4096: 70.0})
    assert crossover(cpu, cuda) == 256
    assert crossover(cpu, cpu * 2) is None


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    atomic_write_text(target, "old")

    def boom(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_workflow_validates_against_the_github_schema() -> None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if not exe.exists():
        pytest.skip("check-jsonschema not installed (pip install -e '.[dev]')")
    r = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", ".github/workflows/suite.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr


# ---- the gate fails closed ------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, run: dict) -> str:
    (tmp_path / name).write_text(json.dumps(run))
    return str(tmp_path / name)


def test_gate_refuses_a_verdict_on_too_few_rows(runs: Path, tmp_path: Path, capsys) -> None:
    base = json.loads((runs / "cpu.json").read_text())
    few = copy.deepcopy(base)
    few["benchmarks"] = few["benchmarks"][:1] + few["benchmarks"][-2:]  # one step row (+ the peaks)
    assert main(["compare", str(runs / "cpu.json"), _write(tmp_path, "few.json", few)]) == 3
    out = capsys.readouterr().out
    assert "coverage: 1 of 12 baseline rows compared (8%" in out and "NO VERDICT" in out
    assert "no regression" not in out
    assert main(["compare", str(runs / "cpu.json"), str(tmp_path / "few.json"), "--min-coverage", "5%"]) == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_gate_refuses_nan_inf_or_nonpositive_medians(bad: float, runs: Path, tmp_path: Path, capsys) -> None:
    new = json.loads((runs / "cpu.json").read_text())
    new["benchmarks"][0]["stats"]["median"] = bad
    assert main(["compare", str(runs / "cpu.json"), _write(tmp_path, "bad.json", new)]) == 3
    assert "not a positive finite time" in capsys.readouterr().out


def test_gate_refuses_another_machine_unless_allowed(runs: Path, tmp_path: Path, capsys) -> None:
    for key, value in (("cpu_model", "Other CPU"), ("torch_threads", 16)):
        other = json.loads((runs / "cpu.json").read_text())
        other["machine_info"]["twolayer"][key] = value
        if key == "torch_threads":
            for b in other["benchmarks"]:
                b["extra_info"].pop("threads", None)
        path = _write(tmp_path, f"{key}.json", other)
        assert main(["compare", str(runs / "cpu.json"), path]) == 4
        out = capsys.readouterr().out
        assert "base machine: cpu: Test CPU, 2 threads" in out and "different machines" in out
        assert main(["compare", str(runs / "cpu.json"), path, "--allow-machine-change"]) == 0


def test_min_coverage_is_validated(runs: Path, capsys) -> None:
    cpu = str(runs / "cpu.json")
    assert main(["compare", cpu, cpu, "--min-coverage", "lots"]) == 2
    assert "--min-coverage: expected a percentage" in capsys.readouterr().err


def test_workflow_keeps_untrusted_code_off_the_gpu_runner_and_does_not_stall() -> None:
    """The CUDA job runs only when a GPU runner is declared, never for pull requests; compare does not wait on it."""
    ruamel = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema (dev extra)")
    wf = ruamel.YAML(typ="safe").load((ROOT / ".github/workflows/suite.yml").read_text())
    cond = wf["jobs"]["cuda"]["if"]
    assert "vars.GPU_RUNNER == 'true'" in cond and "github.event_name != 'pull_request'" in cond
    assert "always()" in wf["jobs"]["compare"]["if"] and "needs.cpu.result == 'success'" in wf["jobs"]["compare"]["if"]
    setups = [s for j in ("cpu", "compare") for s in wf["jobs"][j]["steps"] if "setup-python" in s.get("uses", "")]
    assert setups and all(s["with"]["cache"] == "pip" for s in setups)


# ---- the benchmark -> reports boundary is a typed, versioned record ---------------------------------------------


def test_another_projects_benchmark_json_is_skipped_by_name(runs: Path, tmp_path: Path, capsys) -> None:
    """A pytest-benchmark run of another project (test_sum) is not read as an implementation, even if newer."""
    foreign = {
        "machine_info": {"node": "elsewhere", "cpu": {"brand_raw": "X"}},
        "commit_info": {},
        "datetime": "2030-01-01T00:00:00",
        "benchmarks": [{"name": "test_sum", "stats": {"median": 1e-6, "min": 1e-6, "mean": 1e-6}, "extra_info": {}}],
    }
    (runs / "other.json").write_text(json.dumps(foreign))
    assert main([str(runs), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "skipping" in err and "other.json" in err and "not a twolayer run" in err
    assert "test_sum" not in (tmp_path / "out" / "benchmarks.csv").read_text()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x: x.update(gflop=1.0), "unknown field(s) gflop"),
        (lambda x: x.pop("workload"), "missing field(s) workload"),
        (lambda x: x.update(N="64"), "field 'N' must be a finite int"),
        (lambda x: x.update(schema=1), "schema 1, expected"),
    ],
)
def test_a_typo_in_a_record_fails_loudly(change, message: str, runs: Path, tmp_path: Path, capsys) -> None:
    run = json.loads((runs / "cpu.json").read_text())
    change(run["benchmarks"][0]["extra_info"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(run))
    assert main([str(bad), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_nan_medians_are_dropped_with_a_warning(runs: Path, tmp_path: Path, capsys) -> None:
    run = json.loads((runs / "cpu.json").read_text())
    run["benchmarks"][0]["stats"]["median"] = float("nan")
    (runs / "cpu.json").write_text(json.dumps(run))
    assert main([str(runs), "--out", str(tmp_path / "out")]) == 0
    assert "dropped 1 row(s) whose median is NaN, inf or <= 0" in capsys.readouterr().err
    df = pd.read_csv(tmp_path / "out" / "benchmarks.csv")
    assert df["median"].notna().all()


# ---- reports say what they read and what they chose ------------------------------------------------------------


def test_missing_verification_file_and_unwritable_out_exit_2(runs: Path, tmp_path: Path, capsys) -> None:
    assert main([str(runs), "--out", str(tmp_path / "o"), "--verification", str(tmp_path / "none.csv")]) == 2
    assert f"--verification {tmp_path / 'none.csv'}: no such file or folder" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main([str(runs), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and "is not a folder" in err and err.count("\n") == 1
    assert main([str(runs), "--out", "/proc/out"]) == 2
    assert "not writable" in capsys.readouterr().err


def test_summary_names_the_runs_shown_and_a_fuller_older_run(runs: Path, tmp_path: Path, capsys) -> None:
    cpu = json.loads((runs / "cpu.json").read_text())
    partial = copy.deepcopy(cpu)
    partial["datetime"] = "2026-11-25T09:00:00"
    partial["benchmarks"] = [b for b in cpu["benchmarks"] if b["extra_info"].get("workload") != "epfl"][:3]
    (runs / "partial.json").write_text(json.dumps(partial))
    out = tmp_path / "out"
    assert main([str(runs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "using cpu: Test CPU: run partial (3 step rows); NOTE: older run cpu has 12 step rows" in printed
    summary = (out / "README.md").read_text()
    assert "## Runs shown" in summary and "--runs cpu to use it" in summary
    assert main([str(runs), "--out", str(out), "--runs", "cpu,cuda"]) == 0
    assert "run cpu (12 step rows)" in capsys.readouterr().out
    assert main([str(runs), "--out", str(out), "--runs", "nope"]) == 2
    assert "--runs: no such run 'nope'" in capsys.readouterr().err


def test_files_respect_the_umask_and_stale_files_are_removed(runs: Path, tmp_path: Path) -> None:
    import os
    import time

    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "from_another_input.png").write_bytes(b"old")
    stale = out / ".benchmarks.csv.abc.tmp"
    stale.write_text("left by a killed run")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert main([str(runs), "--out", str(out)]) == 0
    assert not (out / "plots" / "from_another_input.png").exists() and not stale.exists()
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "benchmarks.csv").stat().st_mode & 0o777 == 0o666 & ~mask


def test_cpu_only_inputs_draw_no_cuda_plot_and_say_why(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main([str(runs / "cpu.json"), "--out", str(out)]) == 0
    assert not (out / "plots" / "cpu_vs_cuda.png").exists()
    assert "No plot: the runs shown hold no CUDA rows" in (out / "README.md").read_text()


def _peak(device: str, workload: str, gflops: float, precision: str = "fp32") -> dict:
    """A GEMM peak row as benchmarks/test_peak.py records it (the product fields come from its own helper)."""
    from benchmarks.test_peak import product_of

    dims = [int(v) for v in workload.split("-")[-1].split("x")]
    shape = (*dims * 3,)[:3] if len(dims) == 1 else tuple(dims)
    return {
        "name": "test_gemm_peak",
        "stats": {"median": 0.01, "min": 0.01, "mean": 0.01, "iqr": 0.0, "rounds": 5},
        "extra_info": {
            "kind": "peak_gemm",
            "device": device,
            "workload": workload,
            "gflops": gflops,
            "impl": "torch.mm",
            "precision": precision,
            "reduced": precision != "fp32",
            **product_of(workload, *shape),
            "schema": SCHEMA,
        },
    }


def test_bf16_rows_use_their_own_peak_and_the_gap_is_split_into_kernel_and_ours(tmp_path: Path) -> None:
    """A bf16 row's roofline comes from the bf16 square peak of the same run; the summary gives its speed-up over
    fp32, and splits the fp32 gap at batch 8192 into the BLAS on the step's own shapes vs the rest of the step."""
    run = _run("cpu", 1.0)
    run["machine_info"]["twolayer"]["low_precision"] = {"cpu": {"bf16": "native", "fp16": "no native fp16 here"}}
    n = 8192
    fp32 = _bench("numpy_flat", "cpu", f"batch-{n}", n, 0.004, large=True)
    bf16 = _bench("batched", "cpu", f"batch-{n}", n, 0.001, large=True, precision="bf16", reduced=True)
    run["benchmarks"] += [
        fp32,
        bf16,
        _peak("cpu", "square-2048", 720.0, "bf16"),
        _peak("cpu", f"net-forward-{n}x784x30", 90.0),
        _peak("cpu", f"net-dW1-30x{n}x784", 120.0),
        _peak("cpu", f"net-forward-{n}x784x32", 128.0),  # padded: 120 useful GFLOP/s, faster than 90
        _peak("cpu", f"net-dW1-32x{n}x784", 96.0),  # padded: 90 useful, slower than 120
    ]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "cpu.json").write_text(json.dumps(run))
    out = tmp_path / "out"
    assert main([str(raw), "--out", str(out), "--reproduced", str(tmp_path)]) == 0
    df = pd.read_csv(out / "benchmarks.csv")
    row = df[(df["workload"] == f"batch-{n}") & (df["precision"] == "bf16")].iloc[0]
    assert row["peak_gflops"] == 720.0
    assert row["roofline_eff"] == pytest.approx(bf16["extra_info"]["flops"] / 720e9 / 0.001)
    assert df[(df["workload"] == f"batch-{n}") & (df["precision"] == "fp32")].iloc[0]["peak_gflops"] == 180.0
    summary = (out / "README.md").read_text()
    assert f"| cpu: Test CPU | batch-{n} | bf16 | batched | 1,000 | 4,000 | 4.00× | 720 |" in summary
    assert "cpu: bf16 native; fp16 no native fp16 here" in summary
    flops = 2 * n * 784 * 30
    t_shape = flops / 120e9 + flops / 120e9
    kernel, ours = 2 * flops / 180e9 / t_shape, t_shape / 0.004
    assert f"| 120 (H=32) | 120 (H=30) | {kernel * 100:.0f} | {ours * 100:.0f} |" in summary


def test_one_cpu_model_on_two_core_counts_is_two_hardwares(tmp_path: Path) -> None:
    """A cloud CPU model names both a 2-core VM slice and a 16-core host: neither run may hide the other."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for cores, scale in ((2, 1.0), (16, 0.3)):
        run = _run("cpu", scale)
        run["machine_info"]["twolayer"]["cpu_count"] = cores
        (raw / f"2026-01-0{cores % 9}T000000_cpu_h.json").write_text(json.dumps(run))
    out = tmp_path / "out"
    assert main([str(raw), "--out", str(out)]) == 0
    summary = (out / "README.md").read_text()
    assert "- cpu: Test CPU, 2 cores: run" in summary and "- cpu: Test CPU, 16 cores: run" in summary
    assert "not shown" not in summary
