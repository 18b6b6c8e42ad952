"""Prefill/decode phase split (Splitwise, DistServe): two pools and the KV-cache transfer between them.

Stage: serving (see docs/design.md).  A :class:`SplitDeployment` has a prefill
pool and a decode pool (each a :class:`~.simulate.Deployment`, on the same or
on different systems).  A request is prefilled in the prefill pool (its first
token comes from there), its KV cache, ``2 x layers x kv_heads x head_dim x
bytes per value x prompt tokens``, moves to the decode pool, and the decode
pool generates the rest.

The transfer is timed on the fabric by the flow model (:func:`kv_transfer`):
the GPUs of one prefill replica send their shares to the GPUs of one decode
replica placed in the other half of the fabric, every replica's transfer at
time (max-min), on an OCS fabric over circuits set up between the two
replicas' GPUs.  Two transfer sizes give the latency and the bandwidth of the
line ``t = latency + bytes / bandwidth``.  Between two systems (e.g. H100
prefill, Lite-GPU decode) the transfer crosses both clusters' scale-out NICs:
the bandwidth is the smaller of the two replicas' scale-out bandwidths.  With
``overlap=True`` the transfer of a layer's KV overlaps the next layer's
prefill (Splitwise's layer-wise transfer): exposed is
``max(x / L, x - prefill (L - 1) / L)`` for a transfer ``x`` over ``L`` layers.

Assumptions: the prefill pool holds a request's KV until it has moved, with no
back-pressure from the decode pool (the two pools are simulated one after the
other); dispatch is round-robin in each pool.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import SpecError
from .goodput import fewest_passing
from .requests import Requests
from .simulate import Deployment, ServeResult, simulate
from .slo import SLO

__all__ = ["KVTransfer", "SplitDeployment", "simulate_split", "kv_transfer", "size_split"]


@dataclass(frozen=True)
class KVTransfer:
    """Time of one request's KV-cache transfer: ``latency_s + bytes / bandwidth_Bps``."""

    latency_s: float
    bandwidth_Bps: float
    kv_bytes_per_token: float
    layers: int
    overlap: bool = True
    how: str = ""

    def time_s(self, prompt) -> np.ndarray:
        return self.latency_s + np.asarray(prompt, float) * self.kv_bytes_per_token / self.bandwidth_Bps

    def exposed_s(self, prompt, prefill_s) -> np.ndarray:
        x = self.time_s(prompt)
        if not self.overlap:
            return x
        L = max(int(self.layers), 1)
        return np.maximum(x / L, x - np.asarray(prefill_s, float) * (L - 1) / L)


@dataclass
class SplitDeployment:
    """A prefill pool, a decode pool and the KV transfer between them."""

    prefill: Deployment
    decode: Deployment
    transfer: KVTransfer
    name: str = ""

    @property
    def gpus(self) -> int:
        return self.prefill.gpus + self.decode.gpus

    @property
    def h100e(self) -> float:
        return self.prefill.h100e + self.decode.h100e

    @property
    def watts(self) -> float:
        return self.prefill.watts + self.decode.watts

    @property
    def cost(self) -> float:
        return self.prefill.cost + self.decode.cost


def simulate_split(split: SplitDeployment, requests: Requests) -> ServeResult:
    """Serve ``requests`` on a split deployment: prefill pool, KV transfer, decode pool."""
    pre = simulate(split.prefill, Requests(requests.arrival_s, requests.prompt, np.ones(len(requests), np.int64)))
    first = pre.first_s
    prefill_s = np.array([split.prefill.model.prefill_s(int(p)) for p in requests.prompt]) \
        if len(requests) < 64 else _prefill_times(split.prefill.model, requests.prompt)
    ready = first + split.transfer.exposed_s(requests.prompt, prefill_s)
    order = np.argsort(ready, kind="stable")
    dec = simulate(split.decode, Requests(ready[order], requests.prompt[order], requests.output[order]),
                   prefilled=True)
    finish = np.empty(len(requests))
    finish[order] = dec.finish_s
    # the decode pool's admission delays the second token: report it in TPOT, TTFT is the prefill pool's
    finish = np.where(requests.output > 1, finish, first)
    return ServeResult(requests.arrival_s.copy(), pre.admit_s, first, finish, requests.output.copy(),
                       {"prefill_replicas": split.prefill.replicas, "decode_replicas": split.decode.replicas,
                        "transfer_mean_ms": float(1e3 * split.transfer.time_s(requests.prompt).mean())
                        if len(requests) else 0.0})


def _prefill_times(model, prompt) -> np.ndarray:
    """Prefill-only iteration time of each prompt (memoized per distinct length)."""
    u, inv = np.unique(np.asarray(prompt), return_inverse=True)
    return np.array([model.prefill_s(int(p)) for p in u])[inv]


def _ranks(fabric, gpus: int, start: int) -> np.ndarray:
    return (start + np.arange(gpus)) % fabric.n_gpus


def kv_transfer(prefill_fabric, decode_fabric, prefill_model, decode_model, layers: int, *,
                same_system: bool = True, overlap: bool = True, probe_tokens: int = 1024) -> KVTransfer:
    """Time the KV-cache transfer from one prefill replica to one decode replica on the fabric.

    On one fabric the prefill replica's GPUs are the first ranks and the decode
    replica's start halfway through the fabric (on an OCS fabric: across the
    circuit domain's outermost dimension, so that circuits can join them); each
    prefill GPU sends its share to the decode GPU of the same tensor rank
    (every pair when the widths differ), max-min on the fabric (on an OCS
    fabric over circuits set up first).  One replica pair is timed: concurrent
    transfers of other pairs are not counted.  Between two systems, the
    scale-out NICs of the two replicas bound the bandwidth.
    """
    from ..flow import phase_time
    import scipy.sparse as sp

    kvb = prefill_model.kv_bytes_per_token
    b1 = kvb * probe_tokens
    if not same_system or prefill_fabric is not decode_fabric:
        from ..hardware import gpu as get_gpu
        gp = get_gpu(prefill_model.meta.get("gpu", "h100-sxm"))
        gd = get_gpu(decode_model.meta.get("gpu", "h100-sxm"))
        bw = min(prefill_model.gpus * gp.scaleout_Bps, decode_model.gpus * gd.scaleout_Bps)
        return KVTransfer(0.0, bw, kvb, layers, overlap, "scale-out NICs between the two systems")
    f = prefill_fabric
    n = f.n_gpus
    gp, gd = prefill_model.gpus, decode_model.gpus
    p = _ranks(f, gp, 0)
    om = f.ocs
    is_ocs = f.circuit_switched
    d = _ranks(f, gd, n // 2)
    if is_ocs:
        src, dst = _ocs_pairs(f, p, gd, om)
        share = np.full(len(src), 1.0 / len(src))
    elif gp == gd:
        src, dst, share = p, d, np.full(gp, 1.0 / gp)
    else:
        src, dst, share = np.repeat(p, gd), np.tile(d, gp), np.full(gp * gd, 1.0 / (gp * gd))
    keep = src != dst
    src, dst, share = src[keep], dst[keep], share[keep] / share[keep].sum()
    how = "flow model (max-min), one replica pair"
    fab = f
    if is_ocs:
        fab, how = _circuits(f, src, dst, om)
    times = []
    for b in (b1, 2 * b1):
        m = sp.csr_matrix((share * b, (src, dst)), shape=(n, n))
        times.append(float(phase_time(fab, m, fidelity="max-min").time_s))
    bw = b1 / max(times[1] - times[0], 1e-30)
    lat = max(times[0] - b1 / bw, 0.0)
    return KVTransfer(lat, bw, kvb, layers, overlap, how)


def _ocs_pairs(f, p: np.ndarray, gd: int, om):
    """(src, dst) pairs joinable by one circuit each: prefill GPU ``p[i % gp]`` to the GPU whose coordinate in
    the circuit domain's outermost dimension is shifted (by about half its size), ``max(gp, gd)`` pairs."""
    from ..topology.optical import grid_strides

    shape = list(om.domain_shape)
    strides = np.asarray(grid_strides(shape), dtype=np.int64)
    l = int(np.argmax(strides * (np.asarray(shape) > 1)))
    s, st = int(shape[l]), int(strides[l])
    k = np.arange(max(len(p), gd))
    src = p[k % len(p)]
    shift = np.maximum(1, (s // 2 + k // len(p)) % s)
    c = (src // st) % s
    return src, src + (((c + shift) % s) - c) * st


def _circuits(f, src, dst, om):
    """The logical fabric with circuits between the transfer pairs (as many per pair as the ports allow)."""
    import scipy.sparse as sp

    from ..errors import FabricError
    from ..topology.circuits import apply_circuits, pair_level

    lvl = pair_level(f, src, dst)
    planes = om.planes_per_level
    out_deg = np.bincount(src, minlength=f.n_gpus)
    in_deg = np.bincount(dst, minlength=f.n_gpus)
    if (lvl < 0).any():
        raise SpecError("split: the OCS wiring cannot join the prefill and decode GPUs by circuits; "
                        "place the pools on a fabric whose GPUs share circuit domains")
    per = np.array([max(1, min(planes[min(l, len(planes) - 1)], om.ports_per_gpu) // max(out_deg[s], in_deg[d], 1))
                    for l, s, d in zip(lvl, src, dst)])
    try:
        logical = apply_circuits(f, sp.csr_matrix((per, (src, dst)), shape=(f.n_gpus, f.n_gpus)))
    except FabricError as e:
        raise SpecError(f"split: circuits for the KV transfer do not fit the OCS ports ({e})") from None
    return logical, f"flow model (max-min) over {int(per.min())}-{int(per.max())} circuits per GPU pair"


def size_split(prefill: Deployment, decode: Deployment, transfer: KVTransfer, requests: Requests, slo: SLO,
               rate: float, *, max_replicas: int = 4096) -> SplitDeployment | None:
    """Fewest prefill replicas that meet the TTFT limit, then fewest decode replicas that meet TPOT, at ``rate``.

    TTFT depends on the prefill pool only (no back-pressure), so the two pools
    are sized one after the other.  None if ``max_replicas`` are not enough.
    """
    reqs = requests.scaled(rate)
    q = slo.percentile

    def ttft_ok(k):
        res = simulate(replace(prefill, replicas=k), Requests(reqs.arrival_s, reqs.prompt, np.ones(len(reqs), np.int64)))
        return float(np.percentile(res.ttft_s, q)) <= slo.ttft_s

    np_ = fewest_passing(ttft_ok, max_replicas)
    if np_ is None:
        return None
    p = replace(prefill, replicas=np_)

    def tpot_ok(k):
        res = simulate_split(SplitDeployment(p, replace(decode, replicas=k), transfer), reqs)
        return slo.met(res.ttft_s, res.tpot_s)

    nd = fewest_passing(tpot_ok, max_replicas)
    if nd is None:
        return None
    return SplitDeployment(p, replace(decode, replicas=nd), transfer)


