"""Cost of a good GPU: wafer, yield, known-good-die test, HBM, 2.5-D packaging and optics.

Stage 1 (silicon model; see docs/design.md, "Silicon").  In US dollars:

* raw die = wafer price / dies per wafer (:func:`~ocsnet.silicon.wafer.dies_per_wafer`);
* every die is probed (known-good-die test, prober rate x test time); a good
  die carries the cost of the bad ones: ``(raw + test) / (Y_die x Y_process)``;
* HBM at a price per GB (``hbm_GB / stack_GB`` stack-equivalents: a small die
  may use fewer or shorter stacks);
* 2.5-D packaging: a silicon interposer under the die and the stacks (area x
  margin x price per mm2) and an assembly cost; each bonded die or stack is
  one assembly step of yield ``assembly_step_yield``, and a failed assembly
  scraps everything on it;
* final test (cost and yield);
* the optics the GPU carries, per Gb/s (co-packaged or pluggable), reported
  beside the GPU cost, not in it: the fabric prices its link ports itself.

Examples
--------
>>> c = gpu_cost(814, 80)
>>> 1500 < c.gpu_usd < 4000       # Epoch AI cites $3,320 to build an H100
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import units
from ..checks import check_range
from ..errors import SpecError
from .params import Params, params as get_params
from .wafer import check_reticle, die_dimensions, dies_per_wafer
from .yields import die_yield

__all__ = ["CostBreakdown", "gpu_cost", "cost_terms", "IO_KINDS"]

from .names import IO_KINDS


@dataclass(frozen=True)
class CostBreakdown:
    """One GPU's cost, US dollars, and the figures behind it."""

    area_mm2: float
    width_mm: float
    height_mm: float
    dies_per_wafer: float
    die_yield: float            # defect-limited yield
    yield_total: float          # die yield x wafer process yield
    raw_die_usd: float
    test_usd: float             # known-good-die test per tested die
    good_die_usd: float
    hbm_stacks: float
    hbm_usd: float
    interposer_mm2: float
    interposer_usd: float
    assembly_usd: float
    assembly_yield: float
    package_usd: float          # everything the package adds to the good die and HBM, yield losses included
    gpu_usd: float              # a good, tested GPU package (without optics)
    optics_usd: float           # the optics it carries (not in gpu_usd)

    def as_dict(self) -> dict:
        return asdict(self)


def gpu_cost(area_mm2: float, hbm_GB: float, *, network_Bps: float = 0.0, io: str = "cpo",
             params: Params | dict | None = None, allow_stitching: bool = False,
             dies_method: str = "exact") -> CostBreakdown:
    """Cost of one good GPU with a die of ``area_mm2`` and ``hbm_GB`` of HBM.

    Parameters
    ----------
    area_mm2 : float
        Die area; its shape is the catalog's aspect ratio.  Larger than the
        reticle is refused unless ``allow_stitching``.
    hbm_GB : float
        HBM capacity (GB, 1e9 bytes).
    network_Bps : float
        Per-direction network bandwidth the GPU's optics carry (priced per Gb/s).
    io : {"cpo", "pluggable", "copper"}
        Which optics price applies (copper carries none).
    params : Params or dict, optional
        Silicon parameters or overrides of the catalog's.
    """
    p = get_params(params)
    check_range("area_mm2", area_mm2, 0, None, lo_open=True)
    check_range("hbm_GB", hbm_GB, 0, None)
    check_range("network_Bps", network_Bps, 0, None)
    if io not in IO_KINDS:
        raise SpecError(f"io: {io!r} is not one of {', '.join(IO_KINDS)}")
    w, h = die_dimensions(area_mm2, p["shoreline.aspect_ratio"])
    check_reticle(w, h, reticle_mm=(p["wafer.reticle_width_mm"], p["wafer.reticle_height_mm"]),
                  allow_stitching=allow_stitching)
    n = dies_per_wafer(w, h, wafer_diameter_mm=p["wafer.diameter_mm"],
                       edge_exclusion_mm=p["wafer.edge_exclusion_mm"], scribe_mm=p["wafer.scribe_mm"],
                       method=dies_method)
    if n < 1:
        raise SpecError(f"die: {w:.1f} x {h:.1f} mm leaves no whole die on the wafer")
    t = cost_terms(area_mm2, hbm_GB, n, p)
    if np.any(t["yield_total"] <= 0):
        raise SpecError("yield: no good die (wafer_process_yield or die yield is 0)")
    if np.any(t["assembly_yield"] <= 0) or p["package.final_test_yield"] <= 0:
        raise SpecError("package: assembly_step_yield and final_test_yield must be in (0, 1]")
    per_Bps = {"cpo": p["optics.cpo_usd_per_Gbps"], "pluggable": p["optics.pluggable_usd_per_Gbps"],
               "copper": 0.0}[io] / units.to_si("x_Gbps", 1.0)
    t = {k: float(v) for k, v in t.items()}
    return CostBreakdown(area_mm2=float(area_mm2), width_mm=w, height_mm=h, dies_per_wafer=float(n),
                         optics_usd=network_Bps * per_Bps, **t)


def cost_terms(area_mm2, hbm_GB, dies_per_wafer, p) -> dict:
    """The cost terms of one GPU (US dollars), array-friendly: any ``p[key]`` may be a numpy array of samples.

    ``p`` maps the catalog's ``"section.key"`` names to values (a :class:`Params`
    or a dict); ``dies_per_wafer`` is given because it depends on the geometry only.
    """
    y = die_yield(area_mm2, p["yield.defect_density_per_cm2"], model=p["yield.model"],
                  alpha=p["yield.clustering_alpha"], critical_layers=p["yield.critical_layers"])
    ytot = y * p["yield.wafer_process_yield"]
    raw = p["wafer.price_usd"] / dies_per_wafer
    test = p["test.prober_usd_per_hour"] / 3600.0 * p["test.test_s_per_mm2"] * area_mm2
    good = (raw + test) / ytot
    stacks = hbm_GB / p["hbm.stack_GB"] if p["hbm.stack_GB"] > 0 else 0.0
    hbm = hbm_GB * p["hbm.usd_per_GB"]
    inter_mm2 = (area_mm2 + stacks * p["hbm.stack_footprint_mm2"]) * p["package.interposer_margin"]
    inter = inter_mm2 * p["package.interposer_usd_per_mm2"]
    asm = p["package.assembly_usd"] + 0.0 * area_mm2
    ay = p["package.assembly_step_yield"] ** (1.0 + stacks)
    gpu = ((good + hbm + inter + asm) / ay + p["package.final_test_usd"]) / p["package.final_test_yield"]
    return {"die_yield": y, "yield_total": ytot, "raw_die_usd": raw, "test_usd": test, "good_die_usd": good,
            "hbm_stacks": stacks + 0.0 * area_mm2, "hbm_usd": hbm, "interposer_mm2": inter_mm2,
            "interposer_usd": inter, "assembly_usd": asm, "assembly_yield": ay,
            "package_usd": gpu - good - hbm, "gpu_usd": gpu}
