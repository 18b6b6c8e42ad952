"""``ocsnet compare``: the Lite-GPU versus H100 study (the project's main job)."""

from __future__ import annotations

import argparse
import time

from ..errors import SpecError
from .argtypes import int_at_least


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(name: str):
    def parse(text: str) -> list[int]:
        try:
            vals = [int(t) for t in _list(text)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: expected comma-separated integers, got {text!r}") from None
        if not vals or min(vals) < 1:
            raise argparse.ArgumentTypeError(f"{name}: values must be integers >= 1, got {text!r}")
        return vals
    return parse


def _pos_int(name: str):
    return int_at_least(name, 1)


def register(sub) -> None:
    p = sub.add_parser("compare", help="the Lite-GPU versus H100 study: best plan per system, report and figures",
                       description="Compare an H100 DGX cluster with Lite-GPU clusters of the same silicon on "
                                   "packet, OCS and CPO fabrics; write a report folder.")
    p.add_argument("-o", "--output", default="report", help="report folder (default: report)")
    p.add_argument("--models", type=_list, help="comma-separated model names (default: llama3-405b,gpt3-175b,llama3-70b)")
    p.add_argument("--modes", type=_list, help="prefill,decode (default both)")
    p.add_argument("--variants", type=_list, help="Lite-GPU variants (default lite-base,lite-netboost,lite-overclock)")
    p.add_argument("--algorithms", type=_list, help="all-reduce algorithms searched (default ring,rhd,double-binary-tree)")
    p.add_argument("--tp", type=_ints("--tp"), help="tensor-parallel sizes searched, e.g. 4,8,16")
    p.add_argument("--pp", type=_ints("--pp"), help="pipeline sizes searched, e.g. 1,2,4")
    p.add_argument("--batch", type=_ints("--batch"), help="decode batch per micro-batch, comma-separated values "
                                                          "are searched (default 8,16,32)")
    p.add_argument("--prefill-batch", type=_ints("--prefill-batch"), help="prefill batch, searched (default 1)")
    p.add_argument("--prompt", type=_pos_int("--prompt"), help="prefill prompt length, tokens (default 4096)")
    p.add_argument("--context", type=_pos_int("--context"), help="decode context length, tokens (default 4096)")
    p.add_argument("--objective", choices=("tokens_per_s_per_h100e", "tokens_per_s_per_kW", "tokens_per_s_per_cost",
                                           "latency_ms"),
                   help="what the plan search optimizes (default tokens_per_s_per_h100e; latency_ms is minimized)")
    p.add_argument("--reconfig-delay", help="OCS reconfiguration delay for every OCS system, e.g. 10us "
                                            "(default: the OCS catalog's)")
    p.add_argument("--baseline-fabric", help="topology spec of the H100 baseline (default h100-dgx, 32 nodes)")
    p.add_argument("--packet-fabric", help="topology spec of the Lite-GPU packet fabric (default lite-fat-tree)")
    p.add_argument("--ocs-fabric", help="topology spec of the Lite-GPU OCS fabric (default lite-ocs)")
    p.add_argument("--cpo-fabric", help="topology spec of the Lite-GPU CPO direct fabric (default lite-cpo-torus)")
    p.add_argument("--config", metavar="STUDY",
                   help="a study: a name in studies/ (built-in or a user folder's) or a .toml/.json file holding "
                        "any keys of the default study (studies/lite-vs-h100.toml); the flags above override it")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--dtype", help="weights and activations: bf16 or fp8 (default bf16)")
    p.add_argument("--kv-dtype", help="KV cache: bf16 or fp8 (default: --dtype)")
    p.add_argument("--calibration", help="kernel/collective efficiency model: measured (default) or roofline")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import units
    from ..evaluation import DEFAULT_STUDY, run_study, summary_table, write_report

    from ..evaluation.config import DEFAULT_STUDY_NAME, load_study

    try:
        cfg: dict = load_study(args.config or DEFAULT_STUDY_NAME)
    except SpecError as e:
        raise SpecError(f"--config: {e}") from None
    for key, val in (("models", args.models), ("modes", args.modes), ("variants", args.variants),
                     ("algorithms", args.algorithms), ("tp", args.tp), ("pp", args.pp),
                     ("objective", args.objective), ("dtype", args.dtype), ("kv_dtype", args.kv_dtype),
                     ("calibration", args.calibration)):
        if val:
            cfg[key] = val
    if args.batch or args.context:
        d = dict(cfg.get("decode", DEFAULT_STUDY["decode"]))
        d.update({k: v for k, v in (("batch", args.batch), ("context", args.context)) if v})
        cfg["decode"] = d
    if args.prefill_batch or args.prompt:
        d = dict(cfg.get("prefill", DEFAULT_STUDY["prefill"]))
        d.update({k: v for k, v in (("batch", args.prefill_batch), ("seq_len", args.prompt)) if v})
        cfg["prefill"] = d
    if args.reconfig_delay:
        s = units.parse_time(args.reconfig_delay, field="--reconfig-delay")
        if s < 0:
            raise SpecError(f"--reconfig-delay: {args.reconfig_delay!r} is out of range, allowed [0, inf)")
        cfg["reconfig_delay_us"] = units.from_si("x_us", s)
    if args.baseline_fabric:
        b = dict(cfg.get("baseline", DEFAULT_STUDY["baseline"]))
        b.update({"fabric": args.baseline_fabric, "overrides": {}})
        cfg["baseline"] = b
    for kind, val in (("packet", args.packet_fabric), ("OCS", args.ocs_fabric), ("CPO torus", args.cpo_fabric)):
        if val:
            lf = {k: dict(v) for k, v in cfg.get("lite_fabrics", DEFAULT_STUDY["lite_fabrics"]).items()}
            lf[kind] = {"fabric": val, "overrides": {}}
            cfg["lite_fabrics"] = lf
    t0 = time.perf_counter()
    result = run_study(cfg, progress=not args.quiet)
    print(summary_table(result))
    report = write_report(result, args.output, figures=not args.no_figures)
    print(f"\nreport: {report}  ({time.perf_counter() - t0:.1f} s)")
    return 0
