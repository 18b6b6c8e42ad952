"""``ocsnet faults``: inject failures into a fabric, and what a failed component costs a deployment.

Examples::

    ocsnet faults inject small-torus --fail gpu:17,link:3-9 --traffic all-to-all --size 1MB
    ocsnet faults inject small-fat-tree --fail switch:spine-1 --bisection
    ocsnet faults inject small-ocs --fail plane:1,port:5/0 --json
    ocsnet faults blast lite-cpo-torus --gpus-per-replica 32 --component gpu:17
    ocsnet faults availability h100-dgx --gpu h100-sxm --gpus-per-replica 16 --policy spares --spares 64
    ocsnet faults resolve small-ring-synthetic --fail port:3/0,port:7/1

``inject`` prints what was lost (GPUs failed and cut off, links and capacity
lost, optical ports lost, with ``--bisection`` the bisection before and
after) and, with ``--traffic`` (a pattern), the phase time before and after
(flows to or from a failed or cut-off GPU are reported, not routed).
``--fail`` takes ``kind:value`` items: ``gpu:R``, ``link:A-B`` (``A~B`` for
names with ``-``, ``A>B`` one direction), ``switch:NAME`` (``leaf-K``,
``spine-K``, ``core-K``, ``nvswitch-K`` or a node index), ``plane:P``,
``port:R/K`` (port ``K`` of GPU ``R``), ``host:S``.

``blast`` gives the blast radius of one component (``--component``) or the
distribution per component kind; ``availability`` the analytic steady state
and a seeded Monte Carlo of ``--days`` days with the catalog's failure rates.
``resolve`` solves a schedule scenario (``ocsnet schedule list``), takes the
optical ports a set of ``port:`` and ``plane:`` faults removes, repairs the
schedule warm-started from the old one and compares it with a solve from
scratch (makespan before and after, times).
"""

from __future__ import annotations

import argparse
import json


from .. import units
from ..errors import FaultError

_ROUTING = ("ecmp", "shortest", "dor")


def register(subparsers) -> None:
    p = subparsers.add_parser("faults", help="inject failures; blast radius and availability under failures",
                              description=__doc__.splitlines()[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="faults_command", metavar="ACTION")
    i = sub.add_parser("inject", help="what a set of failures cuts off, and traffic before and after")
    i.add_argument("fabric", metavar="SPEC_OR_FILE", help="spec name or TOML path, or a fabric file")
    i.add_argument("--fail", required=True, metavar="FAULTS", help="e.g. gpu:17,link:3-9,switch:spine-2,plane:1")
    i.add_argument("--traffic", default=None, metavar="PATTERN", help="a pattern to time before and after")
    i.add_argument("--size", default="1MB", help="bytes per flow of the pattern (default 1MB)")
    i.add_argument("--seed", type=int, default=0, help="seed of the permutation and random patterns (default 0)")
    i.add_argument("--routing", default="ecmp", choices=_ROUTING,
                   help="ecmp, shortest, or dor (dimension order with detours, tori only); default ecmp")
    i.add_argument("--bisection", action="store_true", help="also the bisection before and after (slower)")
    i.add_argument("--json", action="store_true", help="print one JSON document")
    i.set_defaults(func=run_inject)
    for name, helptext in (("blast", "blast radius of a component, or per component kind"),
                           ("availability", "expected capacity lost, Monte Carlo and goodput under failures")):
        b = sub.add_parser(name, help=helptext)
        b.add_argument("fabric", metavar="SPEC_OR_FILE")
        b.add_argument("--gpu", default=None, help="GPU catalog name (default: the fabric's GPU)")
        b.add_argument("--gpus-per-replica", type=int, required=True, help="tp x pp GPUs of one replica")
        b.add_argument("--comm-fraction", type=float, default=0.3,
                       help="share of a replica's step in network communication, [0, 1] (default 0.3)")
        b.add_argument("--json", action="store_true")
        if name == "blast":
            b.add_argument("--component", default=None, help="e.g. gpu:17, switch:spine-1, plane:0, port:5/0, host:2")
            b.set_defaults(func=run_blast)
        else:
            b.add_argument("--policy", default="none", choices=("none", "spares", "ocs"))
            b.add_argument("--spares", type=int, default=0,
                           help="hot spare GPUs per spare domain (default 0; the domain is the cluster)")
            b.add_argument("--domain-gpus", type=int, default=None,
                           help="GPUs per spare domain, each with its own pool (default: the whole cluster)")
            b.add_argument("--weights", default="1GB", help="weights per GPU to reload on an OCS swap (default 1GB)")
            b.add_argument("--days", type=float, default=30.0, help="Monte Carlo period (default 30)")
            b.add_argument("--seed", type=int, default=0)
            b.set_defaults(func=run_availability)
    r = sub.add_parser("resolve", help="re-solve an OCS schedule scenario after port or plane failures")
    r.add_argument("scenario", help="a scenario name (ocsnet schedule list) or TOML path")
    r.add_argument("--fail", required=True, metavar="FAULTS", help="port:R/K and plane:P items")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=run_resolve)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _fabric(spec):
    from .topo import load_fabric
    return load_fabric(spec)


def _phase(fabric, demand, routing):
    from ..flow import flows_from_demand, phase_time
    if routing == "dor":
        from ..flow.torus import route_dor
        s, d, _ = flows_from_demand(demand, fabric.n_gpus)
        return phase_time(fabric, demand, routes=route_dor(fabric, s, d)).time_s
    return phase_time(fabric, demand, routing=routing).time_s


def run_inject(args) -> int:
    import numpy as np

    from ..faults import degrade

    fabric = _fabric(args.fabric)
    dg = degrade(fabric, args.fail)
    out = {"fabric": fabric.name, **dg.summary(bisection=args.bisection)}
    if (fabric.kind == "ocs").any():
        from ..faults import ocs_ports
        left = ocs_ports(fabric, dg)
        out["optical_ports_left_min"] = int(left.min())
        out["gpus_with_fewer_ports"] = int((left < left.max(initial=0)).sum()) if len(left) else 0
    if args.traffic is not None:
        from ..flow import PATTERNS, flows_from_demand, pattern_demand
        if args.traffic not in PATTERNS:
            raise FaultError(f"--traffic: {args.traffic!r} is not a pattern; allowed: {', '.join(PATTERNS)}")
        if (fabric.kind == "ocs").any():
            raise FaultError("--traffic: an OCS fabric carries traffic only as circuits; time a schedule with "
                             "ocsnet schedule (its problem takes the ports left)")
        D = pattern_demand(args.traffic, fabric.n_gpus, units.parse_bytes(args.size, "--size"), seed=args.seed)
        s, d, _ = flows_from_demand(D, fabric.n_gpus)
        ok = dg.reachable(s, d)
        import scipy.sparse as sp
        Dc = sp.csr_matrix(D)
        Dk = sp.csr_matrix((np.asarray(Dc[s[ok], d[ok]]).ravel(), (s[ok], d[ok])), shape=Dc.shape)
        before = _phase(fabric, D, args.routing)
        after = _phase(dg.fabric, Dk, args.routing) if Dk.nnz else 0.0
        out.update({"traffic": args.traffic, "routing": args.routing, "flows": int(len(s)),
                    "flows_unreachable": int((~ok).sum()),
                    "unreachable_examples": [[int(a), int(b)] for a, b in zip(s[~ok][:8], d[~ok][:8])],
                    "phase_time_before_s": before, "phase_time_after_s": after,
                    "slowdown": after / before if before > 0 else None})
    if args.json:
        print(json.dumps(out, sort_keys=True, indent=1, allow_nan=False))
        return 0
    print(f"{fabric.name}: {out['n_gpus']} GPUs; failed: {out['faults']}")
    print(f"GPUs failed: {out['gpus_failed']}; cut off from the rest: {out['gpus_cut_off']}"
          + (f" (ranks {out['cut_off_ranks']})" if out["gpus_cut_off"] else "")
          + f"; connectivity groups: {out['groups']}")
    print(f"links lost (directed): {out['links_failed']}; capacity lost: "
          f"{units.fmt_bandwidth(out['capacity_lost_Bps'])} ({100 * out['capacity_lost_share']:.3g} %)")
    if "optical_ports_left_min" in out:
        print(f"optical ports lost: {out['ports_lost']}; GPUs with fewer ports: {out['gpus_with_fewer_ports']} "
              f"(fewest left: {out['optical_ports_left_min']})")
    if args.bisection:
        print(f"bisection: {units.fmt_bandwidth(out['bisection_before_Bps'])} before, "
              f"{units.fmt_bandwidth(out['bisection_after_Bps'])} after")
    if args.traffic is not None:
        print(f"{args.traffic} ({out['flows']} flows, {args.routing}): phase time "
              f"{units.fmt_time(out['phase_time_before_s'])} before, {units.fmt_time(out['phase_time_after_s'])} after"
              + (f"; {out['flows_unreachable']} flows have no path, e.g. {out['unreachable_examples'][:3]}"
                 if out["flows_unreachable"] else ""))
    return 0


def _deployment(args):
    from .. import reliability as rl
    fabric = _fabric(args.fabric)
    gpu = args.gpu or fabric.meta.get("gpu")
    if gpu is None:
        raise FaultError("--gpu: the fabric names no GPU model; give one from the catalog")
    return rl.deployment(fabric, gpu, args.gpus_per_replica, comm_fraction=args.comm_fraction)


def run_blast(args) -> int:
    from .. import reliability as rl
    dep = _deployment(args)
    if args.component:
        out = rl.blast_radius(dep, args.component)
        out["replicas_slowed"] = {str(k): v for k, v in out["replicas_slowed"].items()}
    else:
        out = rl.blast_summary(dep)
    if args.json:
        print(json.dumps(out, sort_keys=True, indent=1, allow_nan=False))
        return 0
    print(f"{dep.fabric.name}: {dep.fabric.n_gpus} GPUs, {dep.n_replicas} replicas of {dep.gpus_per_replica} GPUs")
    if args.component:
        print(f"{out['component']}: {len(out['replicas_stopped'])} replicas stop ({out['gpus']} GPUs, "
              f"{out['h100_equivalents']:.4g} H100e), {len(out['replicas_slowed'])} slow down; "
              f"{100 * out['share_of_tokens']:.4g} % of tokens/s lost")
        return 0
    print(f"{'kind':<10} {'units':>7} {'stopped_max':>12} {'gpus_max':>9} {'share_mean_%':>13} {'share_max_%':>12}")
    for k, v in out.items():
        if not v.get("units"):
            print(f"{k:<10} {0:>7}")
            continue
        print(f"{k:<10} {v['units']:>7} {v['replicas_stopped_max']:>12} {v['gpus_stopped_max']:>9} "
              f"{100 * v['share_lost_mean']:>13.4g} {100 * v['share_lost_max']:>12.4g}")
    return 0


def run_availability(args) -> int:
    from .. import reliability as rl
    dep = _deployment(args)
    fm = rl.failure_model()
    c = rl.components(dep, fm, policy=args.policy, spares=args.spares, domain_gpus=args.domain_gpus,
                      weights_B_per_gpu=units.parse_bytes(args.weights, "--weights"))
    a = rl.analytic(c)
    m = rl.monte_carlo(c, days=args.days, seed=args.seed)
    m = {k: v for k, v in m.items() if k not in ("times_s", "capacity")}
    out = {"fabric": dep.fabric.name, "policy": args.policy, "spares": args.spares, "swap_s": c.swap_s,
           "analytic": a, "monte_carlo": m}
    if args.json:
        print(json.dumps(out, sort_keys=True, indent=1, allow_nan=False))
        return 0
    print(f"{dep.fabric.name}: {dep.n_replicas} replicas of {dep.gpus_per_replica} GPUs; policy {args.policy}"
          f" ({args.spares} spares, swap {units.fmt_time(c.swap_s)})")
    print(f"failures: {a['failures_per_h']:.4g}/h, replica outages {a['interruptions_per_h']:.4g}/h; "
          f"a failure finds a spare with p = {a['p_spare']:.3g}")
    print(f"capacity lost (analytic): {100 * a['lost_share']:.4g} % (first order {100 * a['lost_share_first_order']:.4g} %)")
    print(f"capacity lost (Monte Carlo, {args.days:g} days, seed {args.seed}): {100 * m['lost_share']:.4g} % "
          f"+- {100 * m['ci95']:.2g} %; capacity p01 {100 * m['p01']:.4g} %, min {100 * m['min_capacity']:.4g} %")
    return 0


def run_resolve(args) -> int:
    import numpy as np

    from ..faults import parse_faults
    from ..schedule import solve
    from ..schedule.repair import resolve_after_fault
    from ..schedule.scenario import build_problem, load_scenario, solve_defaults

    fs = parse_faults(args.fail)
    if fs.gpus or fs.links or fs.switches or fs.hosts:
        raise FaultError("--fail: resolve takes port:R/K and plane:P faults (a failed GPU's traffic has to move "
                         "to another GPU: change the workload instead)")
    sc = load_scenario(args.scenario)
    prob = build_problem(sc)
    kw = solve_defaults(sc)
    kw["method"] = "heuristic" if kw.get("method", "auto") in ("auto", "exact") else kw["method"]
    old = solve(prob, **kw)
    loss = np.zeros(prob.N, dtype=np.int64)
    for g, k in fs.ports:
        if g >= prob.N:
            raise FaultError(f"port:{g}/{k}: no such GPU rank, allowed [0, {prob.N - 1}]")
        if k >= prob.ports:
            raise FaultError(f"port:{g}/{k}: a GPU has {prob.ports} ports, allowed [0, {prob.ports - 1}]")
    seen = {(g, k) for g, k in fs.ports}
    for p_ in fs.planes:
        if p_ >= prob.ports:
            raise FaultError(f"plane:{p_}: no such OCS plane, allowed [0, {prob.ports - 1}]")
    for g, k in seen:
        if k not in fs.planes:
            loss[g] += 1
    loss += len(fs.planes)
    ports = prob.port_counts - loss
    new = prob.replace(ports=np.maximum(ports, 0))
    res = resolve_after_fault(old, new, compare=True)
    out = {"scenario": sc.name, "faults": str(fs), "method": old.method, **res.summary(),
           "lower_bound_after_s": new.lower_bound_s()}
    if args.json:
        print(json.dumps(out, sort_keys=True, indent=1, allow_nan=False))
        return 0
    print(f"{sc.name}: {prob.P} phases, {prob.N} GPUs, {prob.ports} ports; failed: {fs}")
    print(f"makespan before: {units.fmt_time(res.old_makespan_s)} ({old.method})")
    print(f"after, repaired from the old schedule: {units.fmt_time(res.repair_makespan_s)} in "
          f"{units.fmt_time(res.repair_time_s)} ({res.configs_clipped} configurations clipped, "
          f"{len(res.phases_resolved)} phases re-solved)")
    print(f"after, heuristic from scratch: {units.fmt_time(res.scratch_makespan_s)} in "
          f"{units.fmt_time(res.scratch_time_s)}; lower bound {units.fmt_time(out['lower_bound_after_s'])}")
    print(f"change: {units.fmt_time(res.change_s)} ({res.source} kept)")
    return 0
