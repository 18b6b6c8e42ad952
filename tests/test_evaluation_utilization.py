"""The study's link-utilization data, computed in the evaluation and only drawn by plot.py."""

from __future__ import annotations

import numpy as np
import pytest

from ocsnet.evaluation import evaluate
from ocsnet.evaluation.records import Choice, System
from ocsnet.evaluation.utilization import study_link_utilization, tp_step_utilization
from ocsnet.topology.direct import torus
from ocsnet.workload import ParallelPlan


def _ev(fabric, tp=4, alg="ring"):
    return evaluate("llama3-70b", ParallelPlan(tp=tp), fabric, "decode", batch=8, context=1024,
                    algorithms={"all-reduce": alg}, fidelities=("alpha-beta",))


@pytest.mark.parametrize("alg", ["ring", "rhd"])
def test_utilization_conserves_bytes_times_hops(alg):
    """On a torus every link has the same capacity c and every route is a shortest path, so
    sum_l u_l * c * T equals sum over flows of bytes * hops (an independent count by grid distance)."""
    f = torus((4, 4), gpu="lite-netboost")
    ev = _ev(f, alg=alg)
    d = tp_step_utilization(ev, f)
    u = np.asarray(d["utilization"])
    assert len(u) and (u > 0).all() and (u <= 1 + 1e-9).all() and (np.diff(u) <= 0).all()
    c = float(f.capacity_Bps[0])
    assert np.allclose(f.capacity_Bps, c)
    # the step's flows: bytes over grid distance on the 4 x 4 torus
    from ocsnet.collectives import expand
    from ocsnet.evaluation.timing import placed_ranks
    from ocsnet.traffic import place_steps
    x = max((x for x in ev.profile.layer.collectives if x.group == "tp"), key=lambda x: x.nbytes)
    big = max(expand(x.kind, x.group_size, x.nbytes, x.algorithm), key=lambda m: m.sum())
    ranks = placed_ranks(ev.plan, f, "topology-aware")
    D = place_steps([big], ranks.reshape(-1, 4), f.n_gpus)[0].tocoo()
    xy = lambda r: (r % 4, r // 4)  # noqa: E731 - rank r sits at (r mod 4, r div 4) (dimension 0 fastest)
    def dist(a, b):
        (ax, ay), (bx, by) = xy(a), xy(b)
        dx, dy = abs(ax - bx), abs(ay - by)
        return min(dx, 4 - dx) + min(dy, 4 - dy)
    hops_bytes = sum(v * dist(i, j) for i, j, v in zip(D.row, D.col, D.data) if i != j)
    assert d["step_bytes"] == pytest.approx(D.sum())
    assert float(u.sum()) * c * d["step_s"] == pytest.approx(hops_bytes, rel=1e-9)


def test_study_curves_skip_ocs_systems_and_plot_draws_them():
    f = torus((4, 4), gpu="lite-netboost")
    ev = _ev(f)
    sysd = System("Lite / torus", "small-torus", "lite-netboost", kind="CPO torus")
    ocs = System("Lite / OCS", "small-ocs", "lite-netboost", kind="OCS")
    curves = study_link_utilization([Choice(sysd, ev), Choice(ocs, ev), Choice(sysd, None)],
                                    {sysd.fabric_key: f})
    assert [c["system"] for c in curves] == ["Lite / torus"]
    from ocsnet import plot
    fig = plot.link_utilization(curves)
    assert fig is not None and len(fig.axes[0].lines) == 1
    assert plot.link_utilization([]) is None
