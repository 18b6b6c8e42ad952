"""The memory architecture a user asks the per-layer model for.

Stage 2 of the pipeline (memory).  :class:`MemoryConfig` is plain, frozen
data: which remote tiers a GPU may use, how many lending GPUs a compute GPU
gets for memory sharing, a placement rule (or the optimization) and whether
prefetch may overlap remote reads with compute.  ``None`` in
:func:`ocsnet.evaluate` means local HBM only.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import WorkloadError
from .tiers import MemoryTier, tier

__all__ = ["MemoryConfig", "MEMORY_MODES", "memory_config"]

#: Named memory architectures of the study.
MEMORY_MODES = ("local", "shared", "disaggregated", "host")


@dataclass(frozen=True)
class MemoryConfig:
    """Remote memory for the per-layer model.

    Attributes
    ----------
    tiers : tuple of str or MemoryTier
        Remote tiers a GPU may use (catalog names or specs): ``peer-hbm`` (with ``peer_ratio``),
        ``host-dram``, or the tier of the fabric's memory nodes (its catalog
        name, e.g. ``cxl-pool``; the fabric must have such nodes,
        :func:`ocsnet.topology.attach_memory`).
    peer_ratio : float
        Lending GPUs per compute GPU for ``peer-hbm`` (0.5: one lender per two
        compute GPUs); lenders count in the GPUs of a replica.
    rule : dict, optional
        Placement rule (:func:`ocsnet.memory.place`); default the optimization.
    prefetch : bool
        The next layer's remote bytes arrive during this layer (double buffer).
    """

    tiers: tuple = ()
    peer_ratio: float = 0.0
    rule: dict | None = None
    prefetch: bool = True

    def __post_init__(self):
        ts = (self.tiers,) if isinstance(self.tiers, (str, MemoryTier)) else tuple(self.tiers)
        object.__setattr__(self, "tiers", ts)
        names = [tier(t).name for t in ts]              # unknown names raise, naming the known ones
        if len(set(names)) != len(names):
            raise WorkloadError(f"memory.tiers: a tier is listed twice in {list(ts)}")
        r = self.peer_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (0 <= r <= 64):
            raise WorkloadError(f"memory.peer_ratio: {r!r} is out of range, allowed [0, 64]")
        if any(tier(t).kind == "local" for t in ts):
            raise WorkloadError("memory.tiers: the GPU's own HBM is always used; list only remote tiers")
        if any(tier(t).kind == "peer" for t in ts) != (r > 0):
            raise WorkloadError("memory.peer_ratio: must be > 0 exactly when 'peer-hbm' is among the tiers "
                                f"(tiers {list(ts)}, peer_ratio {r!r})")


    @property
    def names(self) -> tuple:
        """Names of the remote tiers."""
        return tuple(tier(t).name for t in self.tiers)

    @staticmethod
    def tier_kind(t) -> str:
        return tier(t).kind


def memory_config(mode: str, *, node_tier: str = "cxl-pool", peer_ratio: float = 1.0,
                  prefetch: bool = True) -> MemoryConfig | None:
    """The config of a named architecture: ``local`` (None), ``shared`` (peer HBM),
    ``disaggregated`` (the fabric's memory nodes of ``node_tier``), ``host`` (host DRAM)."""
    if mode == "local":
        return None
    if mode == "shared":
        return MemoryConfig(("peer-hbm",), peer_ratio=peer_ratio, prefetch=prefetch)
    if mode == "disaggregated":
        return MemoryConfig((node_tier,), prefetch=prefetch)
    if mode == "host":
        return MemoryConfig(("host-dram",), prefetch=prefetch)
    raise WorkloadError(f"memory mode: {mode!r} is not one of {', '.join(MEMORY_MODES)}")
