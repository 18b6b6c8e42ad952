"""Validation checks of the workload and the evaluation: FLOPs, parameters, published figures, Lite vs H100.

Part of :mod:`ocsnet.validation` (see there for the report).  The published
figures the checks compare against are listed in :data:`PUBLISHED`, each with
its source; they are reference values for validation only (the catalog keeps
its own copy with its own source, and these are what the catalog is checked
against).  Components are looked up through their modules at call time so a
test can replace one and watch its check fail.

References
----------
J. Kaplan et al., "Scaling laws for neural language models", arXiv:2001.08361,
2020, section 2.1 (forward FLOPs per token ``2 N``, N the non-embedding
parameters).
J. Hoffmann et al., "Training compute-optimal large language models",
arXiv:2203.15556, 2022, appendix F (attention FLOPs: logits and reduction,
``2 n_ctx d_attn`` each per token and layer).
S. Williams, A. Waterman, D. Patterson, "Roofline", CACM 52(4), 2009.
R. Pope et al., "Efficiently scaling transformer inference", MLSys 2023
(decoding at small batch is memory-bandwidth bound, prefill compute bound).
B. Canakci et al., "Good things come in small packages: Should we build AI
clusters with Lite-GPUs?", HotOS 2025.
"""

from __future__ import annotations

from typing import Iterator

from .. import hardware, workload
from .check import Check, worst_check
from ..workload import layers

__all__ = ["flops_checks", "literature_checks", "PUBLISHED", "LITE_STUDY"]

#: Published figures: name -> (value in SI units, source).
PUBLISHED: dict[str, tuple[float, str]] = {
    "h100_bf16_sparse_flops": (1979e12, "NVIDIA H100 Tensor Core GPU datasheet (2023), H100 SXM: BF16 Tensor Core "
                                        "1,979 teraFLOPS with sparsity (dense is half)"),
    "h100_hbm_Bps": (3.35e12, "NVIDIA H100 datasheet (2023), H100 SXM: GPU memory bandwidth 3.35 TB/s"),
    "h100_hbm_bytes": (80e9, "NVIDIA H100 datasheet (2023), H100 SXM: GPU memory 80 GB"),
    "h100_nvlink_bidir_Bps": (900e9, "NVIDIA H100 datasheet (2023), H100 SXM: NVLink 900 GB/s (both directions)"),
    "gpt3-175b_params": (175.0e9, "Brown et al., NeurIPS 2020, Table 2.1: GPT-3 175B, 175.0B parameters"),
    "llama3-70b_params": (70.6e9, "meta-llama/Llama-3.1-70B model card: 70.6B parameters"),
    "llama3-405b_params": (405e9, "Llama Team, The Llama 3 Herd of Models, arXiv:2407.21783, section 1: 405B "
                                  "parameters"),
}

_DENSE = ("gpt3-175b", "llama3-70b", "llama3-405b")
_GEMMS = ("qkv", "out-proj", "mlp")


def _embedding_params(m) -> float:
    """Token embedding, LM head unless tied, learned positions and the final norm, from the hyperparameters."""
    h = m.hidden_size
    n = m.vocab_size * h * (1 if m.tied_embeddings else 2)
    if m.position_embedding == "learned":
        n += m.max_context_tokens * h
    return n + h * (2 if m.norm == "layernorm" else 1)


# ---- 4. per-layer FLOPs ----------------------------------------------------------------

def flops_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """Decode FLOPs per token from :func:`ocsnet.workload.layers.layer_profile` against ``2 N``.

    One layer on one GPU (``tp = 1``), decode, times the model's layers, per
    token.  Without attention the reference is ``2 N`` with ``N`` the
    published parameter count minus the embedding parameters (Kaplan et al.
    2020); with attention, ``2 N + 4 L C q_dim`` for a KV cache of ``C``
    tokens (Hoffmann et al. 2022, appendix F: attention logits plus the
    reduction over values).  ocsnet's count includes the norms (about 3e-5
    of the total); biases are left out of both.
    """
    names = ("llama3-70b",) if quick else _DENSE
    batch, context = 8, 2048            # GPT-3's whole context window
    plan = workload.ParallelPlan()
    excl, incl = [], []
    for name in names:
        m = workload.model(name)
        lp = layers.layer_profile(m, plan, "decode", batch=batch, context=context, gpu="h100-sxm")
        tokens = lp.shape.tokens
        per_layer = {o.op: o.flops / tokens for o in lp.ops}
        n_body = PUBLISHED[f"{name}_params"][0] - _embedding_params(m)
        no_attn = m.layers * sum(v for k, v in per_layer.items() if k != "attention")
        excl.append((no_attn, 2 * n_body, name))
        incl.append((m.layers * sum(per_layer.values()), 2 * n_body + 4 * m.layers * context * m.q_dim,
                     f"{name}, context {context}"))
    src = "2N per token, Kaplan et al. 2020; N from the published parameter count"
    for cases, name, what, source in (
            (excl, "decode FLOPs/token, attention excluded",
             "decode FLOPs per token of every layer's ops except attention (GEMMs and norms), summed over the "
             "layers, against 2 x the published non-embedding parameter count", src),
            (incl, "decode FLOPs/token, attention included",
             f"decode FLOPs per token of every layer op including attention over a {context}-token KV cache, "
             "against 2N + 4 L C q_dim", src + "; attention per Hoffmann et al. 2022, app. F")):
        yield worst_check(cases, name=name, group="flops", what=what, quantity="per_token_GFLOPs", source=source,
                          tolerance=1e-2, note="published counts are rounded to 3-4 digits")
    for name in names:
        m = workload.model(name)
        val, src = PUBLISHED[f"{name}_params"]
        yield Check(name=f"{name} parameter count", group="flops",
                    what=f"parameters of {name} computed from its hyperparameters (ModelSpec.params) against the "
                         "published count", quantity="params", ocsnet=m.params(), reference=val, source=src,
                    tolerance=1e-2, note="published counts are rounded")


# ---- 7. published figures and qualitative results ---------------------------------------

def _gemm_intensity(mode: str, **shape) -> tuple[float, list[str]]:
    """FLOP per HBM byte of Llama3-70B's GEMMs on an H100 (tp = 8), and ocsnet's roofline labels of them."""
    lp = layers.layer_profile("llama3-70b", workload.ParallelPlan(tp=8), mode, gpu="h100-sxm", **shape)
    ops = [o for o in lp.ops if o.op in _GEMMS]
    return sum(o.flops for o in ops) / sum(o.hbm_bytes for o in ops), [f"{o.op}: {o.bound}" for o in ops]


#: The Lite-GPU versus H100 check runs the project's own study (:mod:`ocsnet.study`, the protocol of
#: ``ocsnet compare``: the same silicon, each system at its best plan and all-reduce algorithm) in decode
#: for the network-boosted variant.  The full run uses the default study's models, sizes and clusters;
#: the quick run one model on clusters small enough to hold its best replicas (per-replica figures do not
#: depend on the cluster size).  "Matching" means within ``tolerance`` of the H100.
LITE_STUDY = {
    "variant": "lite-netboost", "mode": "decode", "tolerance": 0.05,
    "quick": {"models": ["llama3-70b"],
              "baseline": {"label": "H100 DGX", "fabric": "h100-dgx", "gpu": "h100-sxm",
                           "overrides": {"n_nodes": 4}},
              "lite_fabrics": {"packet": {"fabric": "lite-fat-tree", "overrides": {"n_gpus": 128}},
                               "OCS": {"fabric": "lite-ocs", "overrides": {"n_gpus": 128}},
                               "CPO torus": {"fabric": "lite-cpo-torus", "overrides": {"dims": [8, 4, 4]}}}},
}


def literature_checks(quick: bool = False, seed: int = 0) -> Iterator[Check]:
    """The catalog's H100 against its datasheet; prefill/decode bounds; Lite-GPUs against the H100."""
    h100 = hardware.gpu("h100-sxm")
    val, src = PUBLISHED["h100_bf16_sparse_flops"]
    yield Check(name="H100 dense BF16 peak", group="literature",
                what="catalog h100-sxm dense BF16 FLOP/s against half the datasheet's sparse figure",
                quantity="bf16_TFLOPs", ocsnet=h100.bf16_flops, reference=val / 2, source=src, tolerance=1e-3,
                note="datasheet figure rounded to whole TFLOPS")
    for key, name, quantity, value, scale in (
            ("h100_hbm_Bps", "H100 HBM bandwidth", "hbm_TBps", h100.hbm_Bps, 1.0),
            ("h100_hbm_bytes", "H100 HBM capacity", "hbm_GB", h100.hbm_bytes, 1.0),
            ("h100_nvlink_bidir_Bps", "H100 NVLink per direction", "nvlink_GBps", h100.scaleup_Bps, 0.5)):
        val, src = PUBLISHED[key]
        yield Check(name=name, group="literature",
                    what=f"catalog h100-sxm {name[5:]} against the datasheet"
                         + (" (half of the bidirectional figure)" if scale != 1.0 else ""),
                    quantity=quantity, ocsnet=value, reference=val * scale, source=src, tolerance=1e-9)
    # Roofline: the ridge point from the datasheet, not from the catalog.
    ridge = (PUBLISHED["h100_bf16_sparse_flops"][0] / 2) / PUBLISHED["h100_hbm_Bps"][0]
    rsrc = "H100 ridge point (datasheet peak / HBM bandwidth); Williams et al. 2009, Pope et al. 2023"
    for mode, shape, rel, bound in (("prefill", {"batch": 1, "seq_len": 2048}, ">=", "compute"),
                                    ("decode", {"batch": 8, "context": 4096}, "<=", "memory")):
        ai, labels = _gemm_intensity(mode, **shape)
        wrong = [x for x in labels if not x.endswith(bound)]
        yield Check(name=f"Llama3-70B {mode} GEMMs {bound}-bound", group="literature",
                    what=f"arithmetic intensity (FLOP per HBM byte) of Llama3-70B's GEMMs in {mode} on an H100 "
                         f"(tp=8, {', '.join(f'{k}={v}' for k, v in shape.items())}) against the H100 ridge point; "
                         f"the literature reports {mode} {bound}-bound",
                    quantity="intensity_FLOP_per_B", ocsnet=ai, reference=ridge, source=rsrc, tolerance=0.0,
                    relation=rel, note="ocsnet's roofline labels: " + ", ".join(labels),
                    error=f"ocsnet's roofline labels {', '.join(wrong)}, not {bound}-bound" if wrong else "")
    yield from _lite_checks(quick)


def _lite_checks(quick: bool) -> Iterator[Check]:
    """Canakci et al. (HotOS 2025): Lite-GPUs with boosted network bandwidth match or beat the H100 per
    H100-equivalent of silicon.  One check per model: the best Lite-GPU system of the study against the
    H100 baseline, decode."""
    from ..evaluation import study

    s = LITE_STUDY
    cfg = {"modes": [s["mode"]], "variants": [s["variant"]], "sweep_models": []}
    if quick:
        cfg.update(s["quick"])
    result = study.run_study(cfg, progress=False)
    sizes = study.study_config(cfg)[s["mode"]]
    by_model: dict[str, list[dict]] = {}
    for row in result.summary_rows():
        by_model.setdefault(row["model"], []).append(row)
    for model, rows in by_model.items():
        base = next(r for r in rows if r["system"] == result.config["baseline"]["label"])
        lite = [r for r in rows if r is not base and "throughput_vs_h100" in r]
        best = max(lite, key=lambda r: r["throughput_vs_h100"], default=None)
        each = "; ".join(f"{r['system']} {r['throughput_vs_h100']:.3f} ({r['plan']}, {r['algorithm']})" for r in lite)
        yield Check(name=f"Lite-GPU ({s['variant'].removeprefix('lite-')}) vs H100, {model} {s['mode']}",
                    group="literature",
                    what=f"{model} {s['mode']} ({', '.join(f'{k} {v}' for k, v in sizes.items())}): tokens/s per "
                         f"H100-equivalent of silicon of the best {s['variant']} system of ocsnet's Lite-GPU study "
                         "(packet, OCS and CPO-torus fabrics, best plan and all-reduce algorithm each) over the "
                         "H100 DGX baseline; the paper reports that Lite-GPUs with boosted bandwidth match or beat "
                         "the H100 (ratio >= 1, matching within the tolerance)",
                    quantity="ratio", ocsnet=best["throughput_vs_h100"] if best else float("nan"), reference=1.0,
                    source="Canakci et al., HotOS 2025 (qualitative)", tolerance=s["tolerance"], relation=">=",
                    note=f"H100 {base.get('tokens_per_s_per_h100e', float('nan')):.1f} tok/s/H100e at "
                         f"{base['plan']} ({base['algorithm']}); {each or 'no Lite-GPU plan fits'}")
