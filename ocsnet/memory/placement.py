"""What lives where: weights, KV cache and activations per layer, over memory tiers.

Stage 2 of the pipeline (memory).  A :class:`Demand` is what one GPU must
store (from :func:`ocsnet.workload.step.memory_fit`, the fullest pipeline
stage) and how many bytes a micro-batch pass moves per stored byte; a
:class:`Share` is what one GPU may use of a tier (capacity, and the bandwidth
it can expect; the per-layer model times the real reads on the fabric).
:func:`place` returns a :class:`Placement`: bytes per layer, item and tier.

Model (see docs/design.md, "Memory tiers and placement")
---------------------------------------------------------
- A remote byte is *staged*: copied into an HBM buffer before the op that
  reads it, so the roofline of the op is unchanged and the copy costs its
  bytes over the path (plus latency).  The buffer holds one layer's remote
  bytes, two with prefetch (double buffering), and counts against the HBM.
- Bytes moved per stored byte per micro-batch pass (``traffic``): weights 1
  (training 2: forward and backward), KV cache ``1 / micro_batches`` (the
  pass reads its own micro-batch's cache in decode, writes it in prefill),
  activations 2 (written, then read), gradients 2, optimizer states
  ``2 / micro_batches`` (read and written once per step).
- The optimization (``rule=None``) offloads the least it must and chooses
  what and where by a greedy over sorted costs: the stored bytes of least
  traffic first, into the tiers of most bandwidth first, the heaviest
  chosen item paired with the fastest tier.  Its cost is linear (remote
  traffic over bandwidth, no overlap), a transportation problem whose costs
  are a product ``traffic_i / bandwidth_t``; by exchange and the
  rearrangement inequality the greedy is optimal for it, and
  :func:`lp_bound` solves the same problem as a linear program
  (``scipy.optimize.linprog``) to check it.  Offloaded bytes are spread
  evenly over the layers (the cost is convex per layer, so an even split is
  best); a rule may instead give layer ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..errors import WorkloadError
from .tiers import MemoryTier

__all__ = ["ITEMS", "Demand", "Share", "Placement", "demand", "place", "lp_bound", "greedy_offload"]

#: Items a GPU stores, in table order.
ITEMS = ("weights", "kv_cache", "activations", "gradients", "optimizer")
_FIT_FIELDS = {"weights": "weights_bytes", "kv_cache": "kv_cache_bytes", "activations": "activation_bytes",
               "gradients": "gradient_bytes", "optimizer": "optimizer_bytes"}
# Relative slack on capacity comparisons (floating point sums of many layers).
_RTOL = 1e-9


@dataclass(frozen=True)
class Demand:
    """What one GPU stores on its pipeline stage and the traffic per stored byte.

    ``stored[i]`` bytes of item ``ITEMS[i]`` on the stage; ``traffic[i]`` bytes
    moved per stored byte per micro-batch pass; ``staged[i]`` the fraction of a
    layer's remote bytes the HBM buffer must hold during the pass.
    """

    stored: np.ndarray
    traffic: np.ndarray
    staged: np.ndarray
    layers: int

    @property
    def total_bytes(self) -> float:
        return float(self.stored.sum())


@dataclass(frozen=True)
class Share:
    """What one GPU may use of a tier: capacity (bytes) and an expected bandwidth (bytes/s)."""

    tier: MemoryTier
    capacity_bytes: float
    bandwidth_Bps: float

    def __post_init__(self):
        for f in ("capacity_bytes", "bandwidth_Bps"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and v > 0 and not np.isnan(v)):
                raise WorkloadError(f"memory tier {self.tier.name!r}: {f} {v!r} is out of range, allowed (0, inf)")


@dataclass
class Placement:
    """Bytes per layer, item and tier of one GPU (tier 0 is its own HBM).

    Attributes
    ----------
    shares : tuple of Share
    layer_bytes : ndarray (layers, len(ITEMS), n_tiers)
        Stored bytes of each layer's share of each item in each tier.
    demand : Demand
    prefetch : bool
    staging_bytes : float
        HBM buffer for remote bytes (one layer, two with prefetch).
    method : str
        ``"local"``, ``"rule"`` or ``"greedy"``.
    estimate_s : float
        Remote traffic over the expected bandwidths, per micro-batch pass of
        the stage, no overlap: the objective the greedy minimizes.
    """

    shares: tuple
    layer_bytes: np.ndarray
    demand: Demand
    prefetch: bool
    staging_bytes: float
    method: str
    estimate_s: float = 0.0
    notes: list = field(default_factory=list)

    @property
    def tier_names(self) -> list[str]:
        return [s.tier.name for s in self.shares]

    @property
    def used_bytes(self) -> np.ndarray:
        """Bytes stored per tier (HBM includes the staging buffer)."""
        u = self.layer_bytes.sum(axis=(0, 1))
        u[0] += self.staging_bytes
        return u

    @property
    def capacity_bytes(self) -> np.ndarray:
        return np.array([s.capacity_bytes for s in self.shares])

    @property
    def fits(self) -> bool:
        return bool(np.all(self.used_bytes <= self.capacity_bytes * (1 + _RTOL)))

    @property
    def remote_bytes(self) -> float:
        return float(self.layer_bytes[:, :, 1:].sum())

    def traffic_bytes(self) -> np.ndarray:
        """Bytes moved per layer and tier per micro-batch pass, shape (layers, n_tiers); column 0 is zero."""
        t = np.einsum("lit,i->lt", self.layer_bytes, self.demand.traffic)
        t[:, 0] = 0.0
        return t

    def to_dict(self) -> dict:
        used = self.used_bytes
        return {"method": self.method, "prefetch": self.prefetch,
                "tiers": {s.tier.name: {"used_GB": units.from_si("x_GB", float(used[k])),
                                        "capacity_GB": units.from_si("x_GB", s.capacity_bytes),
                                        "items_GB": {it: units.from_si("x_GB", float(self.layer_bytes[:, i, k].sum()))
                                                     for i, it in enumerate(ITEMS) if self.layer_bytes[:, i, k].sum() > 0}}
                          for k, s in enumerate(self.shares)},
                "staging_GB": units.from_si("x_GB", self.staging_bytes),
                "estimate_us": units.from_si("x_us", self.estimate_s)}


def demand(fit, mode: str, layers: int, micro_batches: int = 1) -> Demand:
    """The :class:`Demand` of a :class:`~ocsnet.workload.step.MemoryFit` (one GPU, fullest stage).

    Raises
    ------
    WorkloadError
        ``layers`` or ``micro_batches`` below 1.
    """
    if int(layers) < 1:
        raise WorkloadError(f"layers: {layers!r} is out of range, allowed [1, inf)")
    if int(micro_batches) < 1:
        raise WorkloadError(f"micro_batches: {micro_batches!r} is out of range, allowed [1, inf)")
    mb = float(micro_batches)
    stored = np.array([float(getattr(fit, _FIT_FIELDS[i])) for i in ITEMS])
    train = mode == "train"
    traffic = np.array([2.0 if train else 1.0, 1.0 / mb, 2.0, 2.0, 2.0 / mb])
    staged = np.array([1.0, 1.0 / mb, 1.0, 1.0, 1.0 / mb])
    return Demand(stored, traffic, staged, int(layers))


def _even(d: Demand, x: np.ndarray) -> np.ndarray:
    """(layers, items, tiers) from whole-stage bytes per (item, tier), spread evenly over the layers."""
    return np.broadcast_to(x / d.layers, (d.layers,) + x.shape).copy()


def _staging(d: Demand, layer_bytes: np.ndarray, prefetch: bool) -> float:
    per_layer = np.einsum("lit,i->l", layer_bytes[:, :, 1:], d.staged) if layer_bytes.shape[2] > 1 else np.zeros(1)
    return (2.0 if prefetch else 1.0) * float(per_layer.max(initial=0.0))


def _estimate(d: Demand, layer_bytes: np.ndarray, shares) -> float:
    bw = np.array([np.inf] + [s.bandwidth_Bps for s in shares[1:]])
    return float(np.einsum("lit,i,t->", layer_bytes, d.traffic, 1.0 / bw))


def _check_shares(shares) -> tuple:
    shares = tuple(shares)
    if not shares or shares[0].tier.kind != "local":
        raise WorkloadError("shares: the first tier must be the GPU's own HBM (kind 'local')")
    names = [s.tier.name for s in shares]
    if len(set(names)) != len(names):
        raise WorkloadError(f"shares: tier {next(n for n in names if names.count(n) > 1)!r} is listed twice")
    return shares


def place(d: Demand, shares, *, rule: dict | None = None, prefetch: bool = False) -> Placement:
    """Place one GPU's bytes over the tiers.

    Parameters
    ----------
    d : Demand
    shares : sequence of Share
        The GPU's own HBM first (kind ``local``), then the remote tiers it may use.
    rule : dict, optional
        User placement: item -> tier name (all of it), or item -> {tier: fraction},
        or item -> list of ``{"tier": name, "fraction": f, "layers": [start, stop]}``
        (fraction of each listed layer's share).  What a rule does not place
        stays in HBM.  Default: the greedy optimization (module notes).
    prefetch : bool
        Double-buffer the staging (the next layer's remote bytes arrive during this one).

    Returns
    -------
    Placement
        Check ``fits``; the greedy raises instead when nothing fits.

    Raises
    ------
    WorkloadError
        A rule names an unknown item or tier, a fraction outside [0, 1] or
        fractions of one layer above 1, a tier over its capacity (named), or
        (greedy) the demand fits in no combination of the tiers.

    Examples
    --------
    >>> from ocsnet.memory.tiers import local_tier, tier
    >>> d = Demand(np.array([30e9, 10e9, 0, 0, 0]), np.array([1.0, 0.25, 2, 2, 2]), np.array([1.0, 0.25, 1, 1, 1]), 40)
    >>> shares = [Share(local_tier("lite-base"), 20e9, 1e12), Share(tier("cxl-pool"), 1e12, 50e9)]
    >>> p = place(d, shares)
    >>> p.fits, round(float(p.layer_bytes[:, 1, 1].sum()) / 1e9, 3)     # the KV cache goes first
    (True, 10.0)
    """
    shares = _check_shares(shares)
    n_t = len(shares)
    if rule is not None:
        lb = _apply_rule(d, shares, rule)
        method = "rule"
    else:
        lb = _greedy(d, shares, prefetch)
        method = "greedy" if n_t > 1 and lb[:, :, 1:].sum() > 0 else "local"
    p = Placement(shares, lb, d, bool(prefetch), _staging(d, lb, prefetch), method, _estimate(d, lb, shares))
    if rule is not None:
        used, cap = p.used_bytes, p.capacity_bytes
        over = np.flatnonzero(used > cap * (1 + _RTOL))
        over = over[over > 0]
        if len(over):
            k = int(over[0])
            raise WorkloadError(f"memory tier {shares[k].tier.name!r}: the rule places {units.fmt_bytes(used[k])} per GPU, "
                                f"it holds {units.fmt_bytes(cap[k])}")
    return p


def _apply_rule(d: Demand, shares, rule) -> np.ndarray:
    if not isinstance(rule, dict):
        raise WorkloadError(f"rule: expected a dict item -> tier, got {type(rule).__name__}")
    names = {s.tier.name: k for k, s in enumerate(shares)}
    L = d.layers
    frac = np.zeros((L, len(ITEMS), len(shares)))
    for item, spec in rule.items():
        if item not in ITEMS:
            raise WorkloadError(f"rule: unknown item {item!r}; allowed: {', '.join(ITEMS)}")
        i = ITEMS.index(item)
        if isinstance(spec, str):
            spec = [{"tier": spec, "fraction": 1.0}]
        elif isinstance(spec, dict):
            spec = [{"tier": t, "fraction": f} for t, f in spec.items()]
        elif not isinstance(spec, (list, tuple)):
            raise WorkloadError(f"rule.{item}: expected a tier name, a dict tier -> fraction or a list of entries")
        for e in spec:
            if not isinstance(e, dict) or "tier" not in e:
                raise WorkloadError(f"rule.{item}: every entry needs a 'tier'")
            unknown = set(e) - {"tier", "fraction", "layers"}
            if unknown:
                raise WorkloadError(f"rule.{item}: unknown key {sorted(unknown)[0]!r}; allowed: tier, fraction, layers")
            t = e["tier"]
            if t not in names:
                raise WorkloadError(f"rule.{item}: unknown tier {t!r}; this placement has: {', '.join(names)}")
            f = e.get("fraction", 1.0)
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not (0 <= f <= 1):
                raise WorkloadError(f"rule.{item}.fraction: {f!r} is out of range, allowed [0, 1]")
            lo, hi = e.get("layers", (0, L))
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo < hi <= L):
                raise WorkloadError(f"rule.{item}.layers: {[lo, hi]!r} is out of range, allowed 0 <= start < stop <= {L}")
            frac[lo:hi, i, names[t]] += f
    remote = frac[:, :, 1:].sum(axis=2)
    bad = np.argwhere(remote > 1 + 1e-12)
    if len(bad):
        layer, i = (int(x) for x in bad[0])
        raise WorkloadError(f"rule.{ITEMS[i]}: fractions of layer {layer} add up to {remote[layer, i]:.3g}, allowed at most 1")
    frac[:, :, 0] = 1.0 - remote
    return frac * (d.stored / L)[None, :, None]


def greedy_offload(d: Demand, shares, offload: float) -> np.ndarray:
    """Whole-stage bytes (items, tiers) of the greedy for a total ``offload`` (column 0: what stays in HBM).

    The least-traffic stored bytes go, into the fastest tiers, the heaviest item paired with the
    fastest tier; :func:`lp_bound` solves the same problem as an LP.
    """
    n_t = len(shares)
    x = np.zeros((len(ITEMS), n_t))
    x[:, 0] = d.stored
    if offload <= 0:
        return x
    # choose the stored bytes of least traffic ...
    pick = np.zeros(len(ITEMS))
    left = offload
    for i in np.argsort(d.traffic, kind="stable"):
        take = min(left, d.stored[i])
        pick[i], left = take, left - take
    # ... and the fastest tiers, then pair the heaviest item with the fastest tier
    room = np.array([s.capacity_bytes for s in shares[1:]])
    bw = np.array([s.bandwidth_Bps for s in shares[1:]])
    tiers = list(np.argsort(-bw, kind="stable"))
    cap = np.zeros(n_t - 1)
    left = offload
    for t in tiers:
        cap[t], left = min(left, room[t]), left - min(left, room[t])
    items = [i for i in np.argsort(-d.traffic, kind="stable") if pick[i] > 0]
    ti = 0
    for i in items:
        need = pick[i]
        while need > 0 and ti < len(tiers):
            t = tiers[ti]
            take = min(need, cap[t])
            x[i, 1 + t] += take
            x[i, 0] -= take
            cap[t] -= take
            need -= take
            if cap[t] <= 0:
                ti += 1
    return x


def _greedy(d: Demand, shares, prefetch: bool) -> np.ndarray:
    C0 = shares[0].capacity_bytes
    total = d.total_bytes
    zero = _even(d, greedy_offload(d, shares, 0.0))
    if total <= C0 * (1 + _RTOL):
        return zero
    remote_cap = sum(s.capacity_bytes for s in shares[1:])
    top = min(total, remote_cap)

    k = 2.0 if prefetch else 1.0

    def local_use(o):                      # an even spread: the staging is one layer's share of the remote bytes
        x = greedy_offload(d, shares, o)
        return float(x[:, 0].sum()) + k * float(x[:, 1:].sum(axis=1) @ d.staged) / d.layers, x

    use, x = local_use(top)
    lb = _even(d, x)
    if use > C0 * (1 + _RTOL):
        where = ", ".join(f"{s.tier.name} {units.fmt_bytes(s.capacity_bytes)}" for s in shares)
        raise WorkloadError(f"memory: {units.fmt_bytes(total)} per GPU fits nowhere ({where}; every layer's "
                            f"remote bytes also need a staging buffer in HBM, {units.fmt_bytes(use - float(lb[:, :, 0].sum()))} "
                            f"with {d.layers} layers per stage)")
    lo, hi = 0.0, top                      # local use decreases with the offload: bisection
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if local_use(mid)[0] <= C0:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-12 * max(total, 1.0):
            break
    return _even(d, local_use(hi)[1])


def lp_bound(d: Demand, shares, offload: float) -> tuple[float, np.ndarray]:
    """The greedy's problem for a fixed total ``offload`` as a linear program (scipy HiGHS).

    Minimize ``sum x[i, t] * traffic[i] / bandwidth[t]`` over the remote tiers
    subject to ``sum_t x[i, t] <= stored[i]``, ``sum_i x[i, t] <= capacity[t]``
    and ``sum x = offload``.  Returns (optimal cost in seconds, x).
    """
    from scipy.optimize import linprog

    shares = _check_shares(shares)
    n_i, n_t = len(ITEMS), len(shares) - 1
    bw = np.array([s.bandwidth_Bps for s in shares[1:]])
    # scaled to order one (bytes by the offload, seconds by the slowest byte): HiGHS's tolerances are absolute
    sb = max(float(offload), 1.0)
    c = (d.traffic[:, None] / bw[None, :]).ravel()
    sc = float(c.max()) if c.max() > 0 else 1.0
    a_item = np.kron(np.eye(n_i), np.ones(n_t))
    a_tier = np.kron(np.ones(n_i), np.eye(n_t))
    res = linprog(c / sc, A_ub=np.vstack([a_item, a_tier]),
                  b_ub=np.concatenate([d.stored, [s.capacity_bytes for s in shares[1:]]]) / sb,
                  A_eq=np.ones((1, n_i * n_t)), b_eq=[offload / sb], bounds=(0, None), method="highs")
    if res.status != 0:
        raise WorkloadError(f"offload: {units.fmt_bytes(offload)} does not fit in the remote tiers ({res.message})")
    return float(res.fun) * sc * sb, res.x.reshape(n_i, n_t) * sb
