"""Blast radius: which replicas of a deployment stop or slow down when a component fails.

Stage: reliability.  A :class:`Deployment` is a fabric, the replica every
GPU rank serves (consecutive blocks of ``tp * pp`` ranks, the evaluation's
placement; ranks left over are idle) and the share of a replica's step spent
in network communication (from the evaluation's flow model).
:func:`blast_matrices` gives, for every component kind, a sparse matrix
``units x replicas`` of the capacity each replica loses when the unit fails,
built for every unit at once (no loop over components):

* ``gpu``, ``hbm``, ``software``: the GPU's whole replica stops (its tensor
  and pipeline groups cannot run without it);
* ``host``: every replica with a GPU on the server (node attribute ``node``,
  else blocks of 8 H100-equivalents of GPUs) stops;
* ``port`` (one of a GPU's ``d`` optical ports or its NIC): with ``d > 1``
  the replica slows down, its communication taking ``d / (d - 1)`` as long
  on the GPU that lost the port (loss ``1 - 1 / (1 + c / (d - 1))`` with ``c``
  the communication share); with ``d = 1`` the replica stops if it needs the
  network (a DGX replica inside one server does not);
* ``switch``: GPUs whose every network link ends at the switch are cut off
  (their replicas stop); an NVSwitch stops its server's replicas; a spine or
  core switch slows every replica whose traffic crosses its tier by the same
  port rule, with ``d`` the switches of that tier;
* ``ocs_plane``: every GPU wired to the plane loses one port (a slow-down of
  every replica that uses the OCS).

:func:`blast_radius` answers for one named component; :func:`blast_summary`
gives the distribution per kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import hardware
from ..errors import FaultError
from ..fabric import Fabric
from ..faults import node_index, parse_faults

__all__ = ["Deployment", "deployment", "blast_matrices", "blast_radius", "blast_summary", "BLAST_KINDS",
           "port_loss", "server_of"]

#: Component kinds of a blast radius.
BLAST_KINDS = ("gpu", "hbm", "port", "switch", "ocs_plane", "host", "software")
_OPTICAL = ("pluggable", "cpo", "circuit")


@dataclass
class Deployment:
    """A model deployed on a fabric: replicas of ``gpus_per_replica`` consecutive GPU ranks.

    Attributes
    ----------
    fabric : Fabric
    gpu : GPUSpec
    replica : ndarray of int (N)
        Replica of every GPU rank, -1 for idle GPUs.
    n_replicas : int
    comm_fraction : float
        Share of a replica's step spent in network communication, in [0, 1].
    tokens_per_s : float
        Tokens/s of the whole deployment with every replica serving.
    h100_per_host : float
        H100-equivalents of silicon per host (fabrics without servers).
    """

    fabric: Fabric
    gpu: object
    replica: np.ndarray
    n_replicas: int
    comm_fraction: float
    tokens_per_s: float
    h100_per_host: float = 8.0

    @property
    def gpus_per_replica(self) -> int:
        return int((self.replica == 0).sum()) if self.n_replicas else 0

    @property
    def h100_equivalents(self) -> float:
        return float(self.fabric.n_gpus * self.gpu.h100_equivalents)


def deployment(fabric: Fabric, gpu, gpus_per_replica: int, *, comm_fraction: float = 0.0,
               tokens_per_s: float = 1.0, h100_per_host: float = 8.0) -> Deployment:
    """Replicas of ``gpus_per_replica`` consecutive GPU ranks on ``fabric``.

    Raises
    ------
    FaultError
        ``gpus_per_replica`` is not in [1, N], or ``comm_fraction`` not in [0, 1].
    """
    N = fabric.n_gpus
    if isinstance(gpus_per_replica, bool) or not float(gpus_per_replica).is_integer() or not 1 <= gpus_per_replica <= N:
        raise FaultError(f"gpus_per_replica: {gpus_per_replica!r} is out of range, allowed integers [1, {N}]")
    c = float(comm_fraction)
    if not 0.0 <= c <= 1.0:
        raise FaultError(f"comm_fraction: {comm_fraction!r} is out of range, allowed [0, 1]")
    if not float(h100_per_host) > 0:
        raise FaultError(f"h100_per_host: {h100_per_host!r} is out of range, allowed (0, inf)")
    R = int(gpus_per_replica)
    n_rep = N // R
    rep = np.arange(N, dtype=np.int64) // R
    rep[rep >= n_rep] = -1
    return Deployment(fabric, hardware.gpu(gpu), rep, n_rep, c, float(tokens_per_s), float(h100_per_host))


def port_loss(d, comm_fraction: float) -> np.ndarray:
    """Capacity a replica loses when one of ``d`` ports of one of its GPUs fails (1 if ``d <= 1``)."""
    d = np.asarray(d, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        slow = 1.0 + comm_fraction / np.maximum(d - 1.0, 1e-300)
        return np.where(d > 1, 1.0 - 1.0 / slow, 1.0)


def _net_links(f: Fabric):
    """Per GPU rank: its network links (optical, or to a packet switch or OCS), as edge ids."""
    g = f.gpu_rank[f.src] >= 0
    other = f.kind[f.dst]
    net = g & ((other != "nvswitch") & (np.isin(f.tech, _OPTICAL) | (other == "packet_switch") | (other == "ocs")))
    return np.flatnonzero(net)


def server_of(dep: Deployment) -> np.ndarray:
    """Host of every GPU rank: its server (node attribute ``node``), else blocks of
    ``h100_per_host`` H100-equivalents of consecutive GPUs."""
    f = dep.fabric
    srv = f.node_attrs.get("node")
    if srv is not None:
        s = np.asarray(srv)[f.gpus].astype(np.int64)
        if (s >= 0).all():
            return s
    per = max(1, int(round(dep.h100_per_host / dep.gpu.h100_equivalents)))
    return np.arange(f.n_gpus, dtype=np.int64) // per


def _onehot(rows, cols, vals, shape, *, reduce: str = "sum") -> sp.csr_matrix:
    """Sparse (rows, cols) -> vals with duplicates added (``"sum"``, capped at 1: a replica never
    loses more than all of it) or taking the largest (``"max"``: one slow-down shared by all)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    vals = np.asarray(vals, dtype=float)
    if reduce == "max" and len(rows):
        key = rows * max(shape[1], 1) + cols
        uk, inv = np.unique(key, return_inverse=True)
        v = np.zeros(len(uk))
        np.maximum.at(v, inv, vals)
        rows, cols, vals = uk // max(shape[1], 1), uk % max(shape[1], 1), v
    m = sp.csr_matrix((vals, (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data = np.minimum(m.data, 1.0)
    m.eliminate_zeros()
    return m


def blast_matrices(dep: Deployment) -> dict:
    """Per kind: ``(B, label)`` with ``B`` a CSR matrix (units x replicas) of capacity lost and
    ``label`` what a unit is (``"gpu"``: GPU ranks; ``"switch"``: node indices ...); also
    ``"ports_per_gpu"`` (N,), the GPU's network ports, for the rates."""
    f, R, N = dep.fabric, dep.n_replicas, dep.fabric.n_gpus
    rep = dep.replica
    on = rep >= 0
    c = dep.comm_fraction
    ranks = np.arange(N)
    size = np.bincount(rep[on], minlength=R) if R else np.zeros(0, np.int64)
    out = {}
    gpu_B = _onehot(ranks[on], rep[on], np.ones(int(on.sum())), (N, R))
    for k in ("gpu", "hbm", "software"):
        out[k] = (gpu_B, "gpu rank")
    server = server_of(dep)
    n_srv = int(server.max()) + 1 if N else 0
    out["host"] = (_onehot(server[on], rep[on], np.ones(int(on.sum())), (n_srv, R)), "server")
    # ports: d network ports per GPU
    e = _net_links(f)
    gr = f.gpu_rank[f.src[e]]
    d = np.bincount(gr, minlength=N)
    # does the replica need the network? (more than one GPU, and for servers: more than one server)
    rep_srv_lo = np.full(R, np.iinfo(np.int64).max)
    rep_srv_hi = np.full(R, -1)
    np.minimum.at(rep_srv_lo, rep[on], server[on])
    np.maximum.at(rep_srv_hi, rep[on], server[on])
    has_nvswitch = bool((f.kind == "nvswitch").any())
    needs_net = (rep_srv_hi > rep_srv_lo) if has_nvswitch else (size > 1)
    loss = np.where(needs_net[rep[on]] if R else False, port_loss(d[on], c), 0.0)
    out["port"] = (_onehot(ranks[on], rep[on], loss, (N, R)), "gpu rank")
    out["ports_per_gpu"] = d
    # switches
    sw = np.flatnonzero(np.isin(f.kind, ("packet_switch", "nvswitch")))
    rows, cols, vals = [], [], []
    if len(sw):
        swi = np.full(f.n_nodes, -1, dtype=np.int64)
        swi[sw] = np.arange(len(sw))
        # GPUs whose every network link ends at one switch are cut off by it
        to_sw = e[f.kind[f.dst[e]] == "packet_switch"]
        g2 = f.gpu_rank[f.src[to_sw]]
        nsw = np.bincount(g2, minlength=N)
        single = to_sw[(nsw[g2] == 1)]
        gs = f.gpu_rank[f.src[single]]
        keep = on[gs]
        rows.append(swi[f.dst[single]][keep])
        cols.append(rep[gs][keep])
        vals.append(np.ones(int(keep.sum())))
        # NVSwitch: its server's GPUs lose NVLink
        nv = np.flatnonzero((f.kind[f.dst] == "nvswitch") & (f.gpu_rank[f.src] >= 0))
        gn = f.gpu_rank[f.src[nv]]
        keep = on[gn]
        rows.append(swi[f.dst[nv]][keep])
        cols.append(rep[gn][keep])
        vals.append(np.ones(int(keep.sum())))
        # upper tiers: slow-down of replicas whose traffic crosses the tier
        tier = f.node_attrs.get("tier")
        if tier is not None and len(single):
            leaf_of = np.full(N, -1, dtype=np.int64)
            leaf_of[gs] = f.dst[single]
            pod = f.node_attrs.get("pod")
            pod_of = np.asarray(pod)[f.gpus] if pod is not None else np.zeros(N, np.int64)
            lo = np.full(R, np.iinfo(np.int64).max)
            hi = np.full(R, -1)
            ok = on & (leaf_of >= 0)
            np.minimum.at(lo, rep[ok], leaf_of[ok])
            np.maximum.at(hi, rep[ok], leaf_of[ok])
            multi_leaf = hi > lo
            plo = np.full(R, np.iinfo(np.int64).max)
            phi = np.full(R, -1)
            np.minimum.at(plo, rep[ok], pod_of[ok])
            np.maximum.at(phi, rep[ok], pod_of[ok])
            multi_pod = phi > plo
            u = int(f.meta.get("uplinks_per_leaf") or 0)
            for t_, mask_rep in ((2, multi_leaf), (3, multi_pod)):
                s_t = sw[(np.asarray(tier)[sw] == t_) & (f.kind[sw] == "packet_switch")]
                if not len(s_t) or not mask_rep.any():
                    continue
                dd = u if (t_ == 2 and u) else max(1, len(s_t) // max(1, int(pod_of.max()) + 1 if t_ == 2 else 1))
                lossv = float(port_loss(dd, c))
                rr = np.flatnonzero(mask_rep)
                if t_ == 2 and pod is not None and int(np.asarray(pod)[s_t].max()) >= 0:
                    # an aggregation switch serves the replicas with a GPU in its pod
                    rp = np.unique(np.stack([rep[ok], pod_of[ok]], axis=1), axis=0)
                    rp = rp[mask_rep[rp[:, 0]]]
                    spod = np.asarray(pod)[s_t]
                    order = np.argsort(spod, kind="stable")
                    spod_sorted = spod[order]
                    lo_i = np.searchsorted(spod_sorted, rp[:, 1], side="left")
                    hi_i = np.searchsorted(spod_sorted, rp[:, 1], side="right")
                    cnt = hi_i - lo_i
                    idx = np.repeat(lo_i, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
                    rows.append(swi[s_t[order][idx]])
                    cols.append(np.repeat(rp[:, 0], cnt))
                    vals.append(np.full(int(cnt.sum()), lossv))
                else:
                    rows.append(np.repeat(swi[s_t], len(rr)))
                    cols.append(np.tile(rr, len(s_t)))
                    vals.append(np.full(len(s_t) * len(rr), lossv))
    out["switch"] = (_onehot(np.concatenate(rows) if rows else [], np.concatenate(cols) if cols else [],
                             np.concatenate(vals) if vals else [], (len(sw), R)), "switch node")
    out["switch_nodes"] = sw
    # OCS planes: every GPU on the plane loses a port
    ocs = f.kind == "ocs"
    if ocs.any() and "plane" in f.node_attrs:
        pl = np.asarray(f.node_attrs["plane"])
        planes = np.unique(pl[ocs])
        eo = e[ocs[f.dst[e]]]
        gp = f.gpu_rank[f.src[eo]]
        pp = pl[f.dst[eo]]
        keep = on[gp]
        gp, pp = gp[keep], pp[keep]
        pidx = np.searchsorted(planes, pp)
        vals = np.where(needs_net[rep[gp]], port_loss(d[gp], c), 0.0)
        out["ocs_plane"] = (_onehot(pidx, rep[gp], vals, (len(planes), R), reduce="max"), "plane")
    else:
        out["ocs_plane"] = (sp.csr_matrix((0, R)), "plane")
    return out


def _share(dep: Deployment, B: sp.csr_matrix) -> np.ndarray:
    """Share of the deployment's tokens/s each unit's failure takes (outage and slow-down)."""
    if dep.n_replicas == 0:
        return np.zeros(B.shape[0])
    return np.asarray(B.sum(axis=1)).ravel() / dep.n_replicas


def blast_summary(dep: Deployment, matrices: dict | None = None) -> dict:
    """Per kind: units, and the mean and worst replicas stopped, GPUs, H100-equivalents and share
    of tokens/s lost (outage plus slow-down), JSON-able."""
    mats = matrices or blast_matrices(dep)
    R = dep.gpus_per_replica
    out = {}
    for k in BLAST_KINDS:
        B, label = mats[k]
        if B.shape[0] == 0:
            out[k] = {"units": 0}
            continue
        full = np.asarray((B >= 1.0).sum(axis=1)).ravel()
        share = _share(dep, B)
        out[k] = {"units": int(B.shape[0]), "unit": label,
                  "replicas_stopped_mean": float(full.mean()), "replicas_stopped_max": int(full.max()),
                  "gpus_stopped_max": int(full.max()) * R,
                  "h100e_stopped_max": float(full.max() * R * dep.gpu.h100_equivalents),
                  "share_lost_mean": float(share.mean()), "share_lost_max": float(share.max()),
                  "slowdown_only_units": int(((share > 0) & (full == 0)).sum())}
    return out


def blast_radius(dep: Deployment, component: str, matrices: dict | None = None) -> dict:
    """What one failed component costs: ``component`` as in ``ocsnet faults`` (``gpu:17``,
    ``switch:spine-2``, ``plane:1``, ``port:5/0``, ``host:2``) or ``hbm:17`` / ``software:17``.

    Returns
    -------
    dict
        ``replicas_stopped`` (ids), ``replicas_slowed`` (id -> capacity lost),
        ``gpus``, ``h100_equivalents`` and ``share_of_tokens`` lost.

    Raises
    ------
    FaultError
        The component does not exist.
    """
    mats = matrices or blast_matrices(dep)
    kind, _, val = str(component).partition(":")
    kind = kind.strip().lower()
    f = dep.fabric
    kind2 = kind
    if kind == "host":
        n_h = mats["host"][0].shape[0]
        if not val.strip().isdigit() or int(val) >= n_h:
            raise FaultError(f"host:{val}: no such host, allowed [0, {n_h - 1}]")
        B = mats["host"][0]
        row = int(val)
        fs = None
    else:
        spec = f"gpu:{val}" if kind in ("hbm", "software") else str(component)
        fs = parse_faults(spec).resolve(f)
    if kind2 in ("gpu", "hbm", "software"):
        row = fs.gpus[0]
    elif kind2 == "port":
        row = fs.ports[0][0]
    elif kind2 == "host":
        pass
    elif kind2 == "switch":
        i = fs.switches[0]
        pos = np.flatnonzero(mats["switch_nodes"] == i)
        if not len(pos):
            raise FaultError(f"switch:{val}: node {i} is not a packet switch or NVSwitch")
        row = int(pos[0])
    elif kind2 == "plane":
        kind2, row = "ocs_plane", fs.planes[0]
    else:
        raise FaultError(f"component: {component!r}; kinds: gpu, hbm, software, port, host, switch, plane")
    B = mats[kind2][0]
    r = B.getrow(row)
    stopped = r.indices[r.data >= 1.0]
    slowed = {int(j): float(x) for j, x in zip(r.indices, r.data) if x < 1.0}
    g = len(stopped) * dep.gpus_per_replica
    return {"component": str(component), "kind": kind2, "replicas_stopped": stopped.tolist(),
            "replicas_slowed": slowed, "gpus": int(g), "h100_equivalents": g * dep.gpu.h100_equivalents,
            "share_of_tokens": float(r.data.sum() / dep.n_replicas) if dep.n_replicas else 0.0}
