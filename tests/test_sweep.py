"""Design-space sweeps: spec parsing, sampling, Pareto fronts, the Parquet store, the engine
(in-process, a real LocalCluster, and a scheduler and worker started as subprocesses)."""

import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis_budget import examples

from ocsnet.cli import main
from ocsnet.errors import SweepError
from ocsnet.sweep import engine
from ocsnet.sweep.pareto import non_dominated
from ocsnet.sweep.spec import parse_sweep
from ocsnet.sweep.store import Store

# A tiny, fast space: every point is one plan (tp=4, pp=2, ring) on a 64-GPU fabric.
TINY = {
    "sweep": {"name": "tiny", "chunk_points": 2, "objectives": ["tokens_per_s_per_h100e:max", "latency_ms:min"],
              "constraints": ["not (gpu == 'lite-base' and fabric == 'lite-cpo-torus')"]},
    "fixed": {"model": "llama3-70b", "mode": "decode", "n_gpus": 64, "tp": 4, "pp": 2, "algorithm": "ring",
              "batch": 8, "context": 1024},
    "axes": {"gpu": ["lite-base", "lite-netboost"], "fabric": ["lite-ocs", "lite-cpo-torus"],
             "reconfig_delay_us": [0.01, 10.0]},
}


def tiny(**over):
    d = json.loads(json.dumps(TINY))
    for k, v in over.items():
        d[k].update(v)
    return parse_sweep(d)


def table(path):
    t = Store(path).table()
    return t.drop_columns(["elapsed_s"])


# -- spec ---------------------------------------------------------------------------------------

def test_grid_is_the_product_less_the_pruned():
    spec = tiny()
    pts, pruned = spec.points()
    assert len(pts) + sum(pruned.values()) == 2 * 2 * 2
    assert pruned == {"not (gpu == 'lite-base' and fabric == 'lite-cpo-torus')": 2}
    assert len({p.key for p in pts}) == len(pts)
    assert all(p.values["n_gpus"] == 64 for p in pts)


@pytest.mark.parametrize("data, match", [
    ({"axes": {"bogus": [1]}}, r"axes\.bogus: unknown knob"),
    ({"axes": {"gpu": ["no-such-gpu"]}}, r"axes\.gpu\[0\]: 'no-such-gpu' is not allowed"),
    ({"axes": {}}, r"axes: a sweep needs at least one axis"),
    ({"axes": {"gpu": []}}, r"axes\.gpu: empty list"),
    ({"axes": {"batch": {"min": 1, "max": 8}}}, r"axes\.batch: a range needs sampling"),
    ({"axes": {"batch": [0]}}, r"axes\.batch\[0\]: 0 is out of range"),
    ({"axes": {"batch": [2.5]}}, r"whole number"),
    ({"sweep": {"sampling": "sobol"}, "axes": {"batch": [1]}}, r"sweep\.sampling: 'sobol'"),
    ({"sweep": {"sampling": "lhs"}, "axes": {"batch": {"min": 1, "max": 8}}}, r"sweep\.samples"),
    ({"sweep": {"constraints": ["tpp > 1"]}, "axes": {"batch": [1]}}, r"'tpp' is not a knob"),
    ({"sweep": {"constraints": ["__import__('os')"]}, "axes": {"batch": [1]}}, r"not allowed in a constraint"),
    ({"sweep": {"constraints": ["batch >"]}, "axes": {"batch": [1]}}, r"not a valid expression"),
    ({"sweep": {"colour": 1}, "axes": {"batch": [1]}}, r"sweep\.colour: unknown key"),
    ({"sweep": {"objectives": ["latency_ms:lowest"]}, "axes": {"batch": [1]}}, r"objectives\[0\]"),
    ({"fixed": {"batch": 1}, "axes": {"batch": [1]}}, r"fixed\.batch: also an axis"),
    ({"extra": {}, "axes": {"batch": [1]}}, r"unknown table 'extra'"),
])
def test_bad_specs_name_the_field(data, match):
    with pytest.raises(SweepError, match=match):
        parse_sweep(data)


@examples(25)
@given(n=st.integers(1, 40), seed=st.integers(0, 1000), k=st.integers(1, 4))
def test_latin_hypercube_fills_every_stratum_once(n, seed, k):
    hi = {"reconfig_delay_us": 1e6, "latency_limit_ms": 1e6, "context": 4_000_000, "seq_len": 4_000_000}
    names = list(hi)[:k]
    axes = {a: {"min": 1, "max": hi[a]} for a in names}
    spec = parse_sweep({"sweep": {"sampling": "lhs", "samples": n, "seed": seed}, "axes": axes})
    pts = spec.candidates()
    assert len(pts) == n
    for a in names:
        v = np.array([p[a] for p in pts], float)
        assert 1 <= v.min() and v.max() <= hi[a]
        strata = np.minimum(((v - 1) / (hi[a] - 1) * n).astype(int), n - 1)
        # one point per stratum (rounding a value may move it across an edge: allow one)
        assert len(np.unique(strata)) >= n - 1
    again = parse_sweep({"sweep": {"sampling": "lhs", "samples": n, "seed": seed}, "axes": axes}).candidates()
    assert again == pts                                      # seeded: the same points


def test_random_log_range_stays_in_range():
    spec = parse_sweep({"sweep": {"sampling": "random", "samples": 200, "seed": 3},
                        "axes": {"reconfig_delay_us": {"min": 0.01, "max": 1e4, "log": True}}})
    v = np.array([p["reconfig_delay_us"] for p in spec.candidates()])
    assert v.min() >= 0.01 and v.max() <= 1e4
    assert (v < 1).mean() > 0.2 and (v > 100).mean() > 0.2   # spread over decades, not linear


# -- Pareto -------------------------------------------------------------------------------------

def brute_front(v, senses):
    g = np.asarray(v, float) * np.array([1 if s == "max" else -1 for s in senses])
    n = len(g)
    return np.array([not any((g[j] >= g[i]).all() and (g[j] > g[i]).any() for j in range(n)) for i in range(n)])


@examples(60)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40),
       st.lists(st.sampled_from(["max", "min"]), min_size=3, max_size=3))
def test_non_dominated_equals_brute_force(rows, senses):
    assert non_dominated(rows, senses).tolist() == brute_front(rows, senses).tolist()


def test_non_dominated_agrees_with_pymoo():
    nds = pytest.importorskip("pymoo.util.nds.non_dominated_sorting")
    rng = np.random.default_rng(1)
    for m in (2, 3, 4):
        v = rng.random((2000, m))
        mask = non_dominated(v, ["min"] * m)
        front = nds.NonDominatedSorting().do(v, only_non_dominated_front=True)
        assert set(np.flatnonzero(mask)) == set(front.tolist())


def test_nan_rows_are_never_on_the_front():
    assert non_dominated([[np.nan, 9], [1, 1]], ["max", "max"]).tolist() == [False, True]


# -- store and engine ---------------------------------------------------------------------------

def test_in_process_run_resume_and_crash(tmp_path, monkeypatch):
    spec = tiny()
    full = tmp_path / "full"
    r = engine.run_sweep(spec, full, workers=1, progress=False)
    assert r.ran == 6 and r.statuses == {"ok": 6}
    assert 0 < r.compute_s <= r.elapsed_s and 0 < r.busy <= 1    # the time spent evaluating is counted
    again = engine.run_sweep(spec, full, workers=1, progress=False)
    assert again.ran == 0 and again.skipped == 6                 # everything stored: nothing re-runs

    # a crash after the first chunk: the rerun computes only the missing points
    crashed = tmp_path / "crashed"
    real = Store.write
    calls = {"n": 0}

    def dying_write(self, rows, tag):
        if calls["n"] == 1:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return real(self, rows, tag)

    monkeypatch.setattr(Store, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        engine.run_sweep(spec, crashed, workers=1, progress=False)
    monkeypatch.setattr(Store, "write", real)
    before = Store(crashed).keys()
    assert len(before) == spec.chunk_points
    evaluated = []
    real_chunk = engine.run_chunk
    monkeypatch.setattr(engine, "run_chunk", lambda pts, fid: evaluated.extend(k for k, _ in pts) or real_chunk(pts, fid))
    resumed = engine.run_sweep(spec, crashed, workers=1, progress=False)
    assert resumed.ran == 4 and len(evaluated) == 4
    assert not set(evaluated) & before                           # stored points are not computed again
    assert table(crashed).equals(table(full))                    # the same dataset as an uninterrupted run


def test_failed_point_is_recorded_and_retried(tmp_path, monkeypatch):
    import ocsnet.sweep.point as point
    spec = tiny()
    real = point._screen
    monkeypatch.setattr(point, "_screen", lambda cfg, setup, *a: 1 / 0 if setup.gpu == "lite-base"
                        else real(cfg, setup, *a))
    r = engine.run_sweep(spec, tmp_path, workers=1, progress=False)
    assert r.statuses == {"failed": 2, "ok": 4}
    t = Store(tmp_path).table()
    reasons = [x for x, s in zip(t.column("reason").to_pylist(), t.column("status").to_pylist()) if s == "failed"]
    assert all(x.startswith("ZeroDivisionError") for x in reasons)
    monkeypatch.setattr(point, "_screen", real)
    assert engine.run_sweep(spec, tmp_path, workers=1, progress=False).ran == 0
    r = engine.run_sweep(spec, tmp_path, workers=1, progress=False, retry_failed=True)
    assert r.ran == 2 and Store(tmp_path).status() == {"ok": 6, "infeasible": 0, "failed": 0}


def test_infeasible_point_has_its_reason(tmp_path):
    spec = tiny(fixed={"model": "llama3-405b", "tp": 1}, axes={"gpu": ["lite-base"], "fabric": ["lite-ocs"],
                                                             "reconfig_delay_us": [10.0]})
    engine.run_sweep(spec, tmp_path, workers=1, progress=False)
    t = Store(tmp_path).table()
    assert t.column("status").to_pylist() == ["infeasible"]
    assert "does not fit" in t.column("reason")[0].as_py()


def test_store_refuses_other_schema_and_other_spec(tmp_path):
    spec = tiny()
    Store(tmp_path, spec)
    man = tmp_path / "sweep.json"
    meta = json.loads(man.read_text())
    with pytest.raises(SweepError, match="another sweep spec"):
        Store(tmp_path, tiny(fixed={"batch": 16}))
    man.write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(SweepError, match="schema version 99"):
        Store(tmp_path, spec)
    with pytest.raises(SweepError, match="not a sweep results folder"):
        Store(tmp_path / "nothing")


def test_local_cluster_gives_the_same_results_as_one_worker(tmp_path):
    spec = tiny()
    one, two = tmp_path / "one", tmp_path / "two"
    engine.run_sweep(spec, one, workers=1, progress=False)
    r = engine.run_sweep(spec, two, workers=2, progress=False)
    assert r.engine == "dask LocalCluster" and r.ran == 6
    assert table(one).equals(table(two))
    # the workers' evaluation time came back with the chunks; start-up and shutdown are measured apart
    assert r.compute_s > 0 and r.startup_s > 0 and r.shutdown_s > 0 and 0 < r.busy <= 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unanswered_scheduler_is_a_clear_error_within_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "connect_timeout_s", 2.0)
    t0 = time.perf_counter()
    with pytest.raises(SweepError, match=r"no Dask scheduler answered within 2 s"):
        engine.run_sweep(tiny(), tmp_path, scheduler=f"tcp://127.0.0.1:{_free_port()}", progress=False)
    assert time.perf_counter() - t0 < 30


def test_external_scheduler_and_worker_subprocesses(tmp_path):
    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip("the dask command is not installed next to this Python")
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    procs = []
    try:
        procs.append(subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=env, start_new_session=True))
        procs.append(subprocess.Popen([str(dask), "worker", addr, "--host", "127.0.0.1", "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env=env, start_new_session=True))
        from distributed import Client
        deadline = time.time() + 60
        with Client(addr, timeout="30s") as c:
            while not c.scheduler_info()["workers"]:
                assert time.time() < deadline, "the worker did not join within 60 s"
                time.sleep(0.2)
        spec_file = tmp_path / "tiny.toml"
        spec_file.write_text(_toml(TINY))
        out = tmp_path / "res"
        assert main(["sweep", "run", str(spec_file), "-o", str(out), "--scheduler", addr, "-q", "--no-report"]) == 0
        ref = tmp_path / "ref"
        engine.run_sweep(parse_sweep(TINY), ref, workers=1, progress=False)
        assert table(out).equals(table(ref))
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def _toml(d: dict) -> str:
    out = []
    for table_name, body in d.items():
        out.append(f"[{table_name}]")
        for k, v in body.items():
            out.append(f"{k} = {json.dumps(v)}")
    return "\n".join(out) + "\n"


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_run_status_report(tmp_path, capsys):
    spec_file = tmp_path / "tiny.toml"
    spec_file.write_text(_toml(TINY))
    out = tmp_path / "res"
    assert main(["sweep", "run", str(spec_file), "-o", str(out), "--workers", "1", "-q"]) == 0
    text = capsys.readouterr().out
    assert "6 points (2 pruned by constraints)" in text and "ran 6 (6 ok)" in text
    assert re.search(r"workers busy \d+% of the time", text)
    assert main(["sweep", "status", str(out), "--json"]) == 0
    st_ = json.loads(capsys.readouterr().out)
    assert st_["ok"] == 6 and st_["remaining"] == 0 and st_["pruned"] == 2
    md = (out / "report" / "report.md").read_text()
    assert "Best design per model and mode" in md and "Pareto front" in md
    assert (out / "report" / "front_tokens_per_s_per_h100e_vs_latency_ms.png").exists()


@pytest.mark.parametrize("argv, match", [
    (["sweep", "run", "no-such-spec", "-o", "x"], "no such file or named spec"),
    (["sweep", "status", "."], "not a sweep results folder"),
    (["sweep", "run", "SPEC", "-o", "x", "--workers", "0"], "--workers: 0 is out of range"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(_toml(TINY))
    argv = [str(spec_file) if a == "SPEC" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_example_spec_is_valid():
    from ocsnet.sweep.spec import load_sweep
    spec = load_sweep("lite-design-space")
    pts, pruned = spec.points()
    assert len(pts) > 10 and sum(pruned.values()) > 0


# -- knobs of the other models ------------------------------------------------------------------

def test_derived_gpu_point_matches_the_silicon_model():
    from ocsnet import hardware
    from ocsnet.sweep.knobs import resolve
    from ocsnet.sweep.point import evaluate_point, gpu_of

    values = {"model": "llama3-70b", "mode": "decode", "gpu_fraction": 0.125, "io": "cpo", "fabric": "lite-ocs",
              "n_gpus": 64, "tp": 8, "pp": 4, "algorithm": "ring", "batch": 8, "context": 1024}
    g = gpu_of(resolve(values))
    ref = hardware.lite_gpu(hardware.gpu("h100-sxm"), fraction=0.125, io="cpo")
    assert g.bf16_flops == ref.bf16_flops and g.network_Bps == ref.network_Bps and g.relative_cost == ref.relative_cost
    row = evaluate_point(values)
    assert row["status"] == "ok", row["reason"]
    assert row["gpu_h100e"] == pytest.approx(0.125) and row["gpu_network_GBps"] == pytest.approx(ref.network_Bps / 1e9)
    assert row["usd_per_million_tokens"] > 0
    with pytest.raises(SweepError, match="gpu and gpu_fraction exclude each other"):
        resolve({**values, "gpu": "lite-base"})


def test_failure_metrics_follow_the_replica_and_the_policy():
    from ocsnet.sweep.point import evaluate_point

    base = {"model": "llama3-70b", "mode": "decode", "gpu": "lite-netboost", "fabric": "lite-ocs", "n_gpus": 64,
            "tp": 4, "pp": 2, "algorithm": "ring", "batch": 8, "context": 1024}
    none = evaluate_point({**base, "repair_policy": "none"})
    spares = evaluate_point({**base, "repair_policy": "spares", "spare_fraction": 0.05})
    assert none["status"] == spares["status"] == "ok"
    # a GPU failure stops its whole replica: tp * pp Lite-GPUs of 1/4 H100 each
    assert none["blast_radius_h100e"] == pytest.approx(4 * 2 * 0.25)
    assert 0 < spares["capacity_lost_share"] < none["capacity_lost_share"] < 1
    assert none["goodput_tokens_per_s_per_kW"] < none["tokens_per_s_per_kW"]
    assert "blast_radius_h100e" not in evaluate_point(base)            # only with the repair_policy knob


def test_memory_and_slo_knobs():
    from ocsnet.serving.slo import slo
    from ocsnet.sweep.point import evaluate_point

    base = {"model": "llama3-70b", "mode": "decode", "gpu": "lite-netboost", "fabric": "lite-ocs", "n_gpus": 64,
            "tp": 2, "pp": 1, "algorithm": "ring", "batch": 8, "context": 1024}
    assert evaluate_point(base)["status"] == "infeasible"             # 70B on two 20 GB GPUs: no
    remote = evaluate_point({**base, "memory": "disaggregated", "memory_nodes": 4})
    assert remote["status"] == "ok", remote["reason"]
    name = sorted(__import__("ocsnet.serving.slo", fromlist=["x"]).presets())[0]
    tight = evaluate_point({**base, "tp": 4, "pp": 2, "slo": name})
    limit_ms = slo(name).tpot_s * 1e3
    assert tight["status"] == "infeasible" or tight["latency_ms"] <= limit_ms


def test_failure_objective_needs_the_repair_policy_knob():
    with pytest.raises(SweepError, match="needs the repair_policy knob"):
        parse_sweep({"sweep": {"objectives": ["blast_radius_h100e:min"]}, "axes": {"batch": [1]}})
    with pytest.raises(SweepError, match="'speed' is not a metric"):
        parse_sweep({"sweep": {"objectives": ["speed:max"]}, "axes": {"batch": [1]}})


@pytest.mark.parametrize("name", ["lite-design-space", "lite-screening", "lite-fraction-space"])
def test_shipped_specs_parse(name):
    from ocsnet.sweep.spec import load_sweep
    pts, _ = load_sweep(name).points()
    assert pts


# ---- chunk sizes: a full chunk at a time, then a shrinking tail ----------------------------------

@examples(200)
@given(n=st.integers(0, 3000), size=st.integers(1, 64), workers=st.integers(1, 16))
def test_chunk_sizes_cover_the_points_with_a_shrinking_tail(n, size, workers):
    sizes = engine.chunk_sizes(n, size, workers)
    assert sum(sizes) == n and all(1 <= s <= size for s in sizes)
    if workers == 1:
        assert sizes == [size] * (n // size) + ([n % size] if n % size else [])
        return
    assert sizes == sorted(sizes, reverse=True)                  # never a bigger chunk after a smaller one
    if n >= 2 * workers:
        assert sizes[-1] == 1                                    # the last chunks are single points
    # only the last 2 * workers * size points are cut smaller than a full chunk
    assert sum(s for s in sizes if s < size) <= 2 * workers * size


def test_chunks_keep_a_fabric_together_and_lose_no_point():
    spec = parse_sweep(TINY)
    points, _ = spec.points()
    chunks = engine._chunks(points, 3, workers=2)
    assert sorted(p.key for c in chunks for p in c) == sorted(p.key for p in points)
    fabrics = [c[0].values.get("fabric") for c in chunks]
    assert fabrics == sorted(fabrics, key=str)
