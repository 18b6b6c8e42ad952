"""Serving under SLOs (the stage after the evaluation): requests, continuous batching, goodput, phase split.

:func:`tabulate` turns one replica's per-layer evaluation into an
:class:`IterationModel` (iteration time as a function of the batch's prompt
tokens, decode tokens and context lengths, and the KV-cache capacity);
:func:`simulate` serves a request stream on a :class:`Deployment` of replicas
with iteration-level scheduling; :func:`goodput` finds the highest rate at
which an :class:`SLO` holds; :class:`SplitDeployment` and
:func:`simulate_split` model prefill and decode on separate pools with the KV
transfer timed on the fabric.  See docs/design.md, "Serving".
"""

from . import engine
from .goodput import goodput, knee, size_replicas
from .iteration import IterationModel, PiecewiseLinear, kv_bytes_per_token, tabulate
from .requests import Requests, generate, read_trace, synthetic, workloads, write_trace
from .simulate import Deployment, ServeResult, simulate
from .slo import SLO, preset_for_model, presets, presets_for_model, slo
from .split import KVTransfer, SplitDeployment, kv_transfer, simulate_split, size_split

__all__ = [
    "SLO", "slo", "presets", "preset_for_model", "presets_for_model",
    "Requests", "generate", "synthetic", "workloads", "read_trace", "write_trace",
    "IterationModel", "PiecewiseLinear", "tabulate", "kv_bytes_per_token",
    "Deployment", "ServeResult", "simulate",
    "goodput", "knee", "size_replicas",
    "KVTransfer", "SplitDeployment", "simulate_split", "kv_transfer", "size_split",
]
