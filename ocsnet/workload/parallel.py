"""Parallel plans (tensor, pipeline, data, expert parallelism) and their placement on a fabric.

Stage 2 of the pipeline (workload).  A :class:`ParallelPlan` says how one
model is split; :meth:`ParallelPlan.validate` checks it against a model;
:func:`place` maps every (dp, pp, tp) rank onto a GPU rank of a fabric.

Conventions
-----------
- ``world_size = tp * pp * dp``.  Expert parallelism does not add GPUs: an
  expert-parallel (EP) group is ``ep`` consecutive data-parallel replicas at
  the same pipeline stage and tensor rank (``ep`` must divide ``dp``), as in
  Megatron-Core where expert parallelism is carved out of data parallelism.
  Each GPU holds ``experts / ep`` experts, each split ``tp`` ways like a dense
  MLP.
- KV heads: when ``tp`` divides ``kv_heads`` each GPU holds
  ``kv_heads / tp`` of them; when ``kv_heads`` divides ``tp`` (``tp >
  kv_heads``) every KV head is replicated on ``tp / kv_heads`` GPUs (as vLLM
  and TensorRT-LLM do).  Other combinations are refused.
- Uneven pipeline stages: when ``pp`` does not divide the layers, the first
  ``layers % pp`` stages hold one layer more (:meth:`ParallelPlan.stage_layers`).
- Placement returns an int array of shape ``(dp, pp, tp)``: ``ranks[d, s, t]``
  is the fabric GPU rank of data-parallel replica ``d``, stage ``s``, tensor
  rank ``t``.  The TP group of (d, s) is ``ranks[d, s, :]``, the DP group of
  (s, t) is ``ranks[:, s, t]``, EP group ``g`` of (s, t) is
  ``ranks[g*ep:(g+1)*ep, s, t]``.

References
----------
Shoeybi et al., "Megatron-LM: Training Multi-Billion Parameter Language Models
Using Model Parallelism", 2019.  Narayanan et al., "Efficient Large-Scale
Language Model Training on GPU Clusters Using Megatron-LM", SC 2021.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .. import checks
from ..errors import WorkloadError
from ..fabric import Fabric
from .models import ModelSpec, model as get_model

__all__ = ["ParallelPlan", "place", "gpu_domains", "STRATEGIES", "DOMAIN_ATTRS"]

STRATEGIES = ("contiguous", "topology-aware")
# GPU node attributes that name a locality domain, in order of locality (see gpu_domains).
DOMAIN_ATTRS = ("node", "server", "host", "nvl_domain", "domain", "circuit_domain", "rack", "rail", "pod")


@dataclass(frozen=True)
class ParallelPlan:
    """How a model is split over GPUs.

    Parameters
    ----------
    tp : int
        Tensor-parallel degree (Megatron-style: attention heads and MLP columns split).
    pp : int
        Pipeline stages.
    dp : int
        Data-parallel replicas.
    ep : int
        Expert-parallel degree (MoE only; must divide ``dp``).
    sp : bool
        Sequence parallelism: each TP all-reduce becomes a reduce-scatter plus
        an all-gather, and norms run on ``1/tp`` of the tokens.

    Raises
    ------
    WorkloadError
        A degree below 1, or sequence parallelism without tensor parallelism.

    Examples
    --------
    >>> plan = ParallelPlan(tp=16, pp=4, dp=2)
    >>> plan.world_size
    128
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    sp: bool = False

    def __post_init__(self):
        for f in ("tp", "pp", "dp", "ep"):
            object.__setattr__(self, f, checks.integer(f, getattr(self, f), lo=1, error=WorkloadError))
        object.__setattr__(self, "sp", checks.boolean("sp", self.sp, error=WorkloadError))
        if self.sp and self.tp == 1:
            raise WorkloadError("sp: sequence parallelism needs tp > 1 (it shards the tensor-parallel activations)")
        if self.dp % self.ep:
            raise WorkloadError(f"ep: {self.ep} must divide dp = {self.dp} (expert-parallel groups are made of data-parallel replicas)")

    @property
    def world_size(self) -> int:
        """GPUs the plan needs: ``tp * pp * dp``."""
        return self.tp * self.pp * self.dp

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        s = f"tp={self.tp} pp={self.pp} dp={self.dp}"
        if self.ep > 1:
            s += f" ep={self.ep}"
        return s + (" sp" if self.sp else "")

    def validate(self, model: ModelSpec | str) -> "ParallelPlan":
        """Check the plan divides the model; return the plan.

        Raises
        ------
        WorkloadError
            Naming the constraint that failed: attention heads, KV heads or
            FFN size not divisible by ``tp``; more stages than layers; ``ep``
            on a dense model or not dividing the experts.
        """
        m = get_model(model)
        if m.attention_heads % self.tp:
            raise WorkloadError(f"tp: {self.tp} does not divide {m.name}'s attention_heads = {m.attention_heads}")
        if m.kv_heads % self.tp and self.tp % m.kv_heads:
            raise WorkloadError(f"tp: {self.tp} and {m.name}'s kv_heads = {m.kv_heads} must divide one another "
                                "(KV heads are split, or replicated when tp > kv_heads)")
        if m.ffn_size % self.tp:
            raise WorkloadError(f"tp: {self.tp} does not divide {m.name}'s ffn_size = {m.ffn_size}")
        if self.pp > m.layers:
            raise WorkloadError(f"pp: {self.pp} stages but {m.name} has only {m.layers} layers")
        if self.ep > 1:
            if not m.is_moe:
                raise WorkloadError(f"ep: {self.ep} > 1 but {m.name} is dense (no experts); use ep=1")
            if m.experts % self.ep:
                raise WorkloadError(f"ep: {self.ep} does not divide {m.name}'s experts = {m.experts}")
        return self

    def stage_layers(self, model: ModelSpec | str) -> np.ndarray:
        """Layers held by each stage, shape (pp,); the first ``layers % pp`` stages get one more."""
        m = get_model(model)
        base, extra = divmod(m.layers, self.pp)
        return np.array([base + (s < extra) for s in range(self.pp)], dtype=np.int64)

    def kv_heads_per_gpu(self, model: ModelSpec | str) -> int:
        """KV heads stored on one GPU (1 when tp > kv_heads: replicated)."""
        m = get_model(model)
        return max(m.kv_heads // self.tp, 1)


# ---- placement -----------------------------------------------------------------------

def _relabel(labels: np.ndarray) -> np.ndarray:
    """Domain labels renumbered 0.. in order of their first GPU rank."""
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    return order[inv.ravel()].astype(np.int64)


def _first_hop(fabric: Fabric, kind: str) -> np.ndarray | None:
    """Per GPU rank, the lowest-index neighbour switch of ``kind`` (own id if none)."""
    sel = (fabric.gpu_rank[fabric.src] >= 0) & (fabric.kind[fabric.dst] == kind)
    if not sel.any():
        return None
    lab = np.full(fabric.n_gpus, fabric.n_nodes, dtype=np.int64)
    np.minimum.at(lab, fabric.gpu_rank[fabric.src[sel]], fabric.dst[sel])
    none = lab == fabric.n_nodes
    lab[none] = fabric.n_nodes + 1 + np.flatnonzero(none)
    return lab


def check_plan(plan) -> "ParallelPlan":
    """``plan`` if it is a :class:`ParallelPlan`, else :class:`WorkloadError` naming ``plan``."""
    if not isinstance(plan, ParallelPlan):
        raise WorkloadError(f"plan: expected a ParallelPlan, got {checks.kind_of(plan)} {plan!r:.60}")
    return plan


def gpu_domains(fabric: Fabric) -> list[tuple[str, np.ndarray]]:
    """Locality domains of a fabric's GPUs, closest first.

    Each entry is ``(name, labels)`` with one label per GPU rank.  In order of
    locality: the NVLink domain (connected components of GPU-NVSwitch links),
    GPU node attributes ``node``/``server``/``host``/``nvl_domain``/``domain``,
    the first-hop packet switch (``leaf``), the attributes
    ``circuit_domain``/``rack``/``rail``/``pod``, the first-hop OCS, and
    always last the whole fabric.  Partitions equal to an earlier one, or
    that leave every GPU alone, are dropped.
    """
    n = fabric.n_gpus
    cands: list[tuple[str, np.ndarray]] = []
    nvs = fabric.kind == "nvswitch"
    if nvs.any():
        ok = nvs[fabric.dst] & (fabric.kind[fabric.src] == "gpu") | nvs[fabric.src] & (fabric.kind[fabric.dst] == "gpu")
        adj = sp.coo_matrix((np.ones(int(ok.sum())), (fabric.src[ok], fabric.dst[ok])),
                            shape=(fabric.n_nodes, fabric.n_nodes))
        _, comp = connected_components(adj, directed=True, connection="weak")
        cands.append(("nvlink", comp[fabric.gpus]))

    def attrs(names):
        for a in names:
            if a in fabric.node_attrs:
                cands.append((a, np.asarray(fabric.node_attrs[a])[fabric.gpus]))

    attrs(("node", "server", "host", "nvl_domain", "domain"))
    lab = _first_hop(fabric, "packet_switch")
    if lab is not None:
        cands.append(("leaf", lab))
    attrs(("circuit_domain", "rack", "rail", "pod"))
    lab = _first_hop(fabric, "ocs")
    if lab is not None:
        cands.append(("ocs", lab))
    cands.append(("fabric", np.zeros(n, dtype=np.int64)))
    out, seen = [], set()
    for name, lab in cands:
        lab = _relabel(np.asarray(lab))
        key = lab.tobytes()
        if key in seen or (n > 1 and lab.max(initial=0) == n - 1):   # every GPU alone: no locality
            continue
        seen.add(key)
        out.append((name, lab))
    return out


def place(plan: ParallelPlan, fabric: Fabric | int, strategy: str = "topology-aware",
          *, domains: list[tuple[str, np.ndarray]] | None = None) -> np.ndarray:
    """Fabric GPU rank of every (dp, pp, tp) rank of a plan.

    Parameters
    ----------
    plan : ParallelPlan
    fabric : Fabric or int
        The fabric (or just its number of GPUs, for ``"contiguous"``).
    strategy : {"topology-aware", "contiguous"}
        ``"contiguous"``: Megatron order, tensor rank fastest, then data
        parallel, then stage (``rank = s*dp*tp + d*tp + t``).
        ``"topology-aware"``: on a torus, every TP group is a block of it (a
        ring, a sub-torus or a line, preferring dimensions spanned whole; see
        :func:`ocsnet.topology.shape.torus_groups`), neighbouring blocks for
        neighbouring groups; otherwise every TP group inside one domain of the closest
        locality level that can hold all groups (:func:`gpu_domains`: NVLink
        domain, node, leaf switch, rack, rail, pod, OCS, fabric); domains are
        filled in rank order, GPUs left over in a domain are used last.  Groups are then assigned
        stage-major (group ``s*dp + d``), so data-parallel peers sit in
        neighbouring domains.
    domains : list of (name, labels), optional
        Override the detected domains (closest first).

    Returns
    -------
    ndarray of int64, shape (dp, pp, tp)
        Distinct GPU ranks.

    Raises
    ------
    WorkloadError
        Unknown strategy, or fewer GPUs than the plan needs.

    Examples
    --------
    >>> place(ParallelPlan(tp=2, pp=2, dp=2), 8, "contiguous")[:, :, :].tolist()
    [[[0, 1], [4, 5]], [[2, 3], [6, 7]]]
    """
    if strategy not in STRATEGIES:
        raise WorkloadError(f"placement: unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    n = fabric if isinstance(fabric, (int, np.integer)) else fabric.n_gpus
    name = "" if isinstance(fabric, (int, np.integer)) else f" {fabric.name!r}"
    W = plan.world_size
    if n < W:
        raise WorkloadError(f"placement: plan {plan} needs {W} GPUs, fabric{name} has {n}")
    if strategy == "contiguous":
        return np.arange(W, dtype=np.int64).reshape(plan.pp, plan.dp, plan.tp).transpose(1, 0, 2).copy()
    if domains is None:
        if isinstance(fabric, (int, np.integer)):
            raise WorkloadError("placement: 'topology-aware' needs a Fabric, not a GPU count")
        blocks = _torus_blocks(fabric, plan.tp)
        if blocks is not None and len(blocks) >= plan.pp * plan.dp:
            return blocks[: plan.pp * plan.dp].reshape(plan.pp, plan.dp, plan.tp).transpose(1, 0, 2).copy()
        domains = gpu_domains(fabric)
    groups = _pack_groups(domains, plan.tp, plan.pp * plan.dp, n)
    return groups.reshape(plan.pp, plan.dp, plan.tp).transpose(1, 0, 2).copy()


def _torus_blocks(fabric: Fabric, tp: int) -> np.ndarray | None:
    """On a torus fabric, groups of ``tp`` GPUs that are blocks of it (rings of unit hops first)."""
    from ..topology.shape import torus_dims, torus_groups
    td = torus_dims(fabric)
    if td is None or tp < 2:
        return None
    return torus_groups(td[0], tp)


def _pack_groups(domains, tp: int, need: int, n: int) -> np.ndarray:
    """``need`` groups of ``tp`` GPU ranks, each inside one domain of the closest level that has room."""
    levels = [np.asarray(lab, dtype=np.int64) for _, lab in domains] + [np.zeros(n, dtype=np.int64)]
    for i, lab in enumerate(levels):
        if len(lab) != n:
            raise WorkloadError(f"domains[{i}]: has {len(lab)} labels, fabric has {n} GPUs")
    pick = len(levels) - 1
    for i, lab in enumerate(levels):
        if int((np.bincount(lab) // tp).sum()) >= need:
            pick = i
            break
    # Order GPUs by domain of the chosen level, inside it by the closer levels
    # (closest first, so a group that must span domains spans whole NVLink
    # domains), then by rank.  Domains are numbered in order of their first rank.
    lab = _relabel(levels[pick])
    closer = [_relabel(levels[j]) for j in range(pick - 1, -1, -1)]
    order = np.lexsort([np.arange(n), *closer, lab])
    lab = lab[order]
    start = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    size = np.diff(np.r_[start, n])
    pos = np.arange(n) - np.repeat(start, size)
    usable = pos < np.repeat(size // tp * tp, size)
    ranks = np.concatenate([order[usable], order[~usable]])
    return ranks[: need * tp].reshape(need, tp)
