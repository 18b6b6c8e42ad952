"""Total cost of ownership and cost per million tokens.

Stage 1 (silicon model; see docs/design.md, "Silicon").  Capital cost
(GPUs, switches, optics, OCS in units of one H100's price, plus hosts per
H100-equivalent of silicon) is amortized linearly over a stated life; energy
is the power at full load times the PUE at a stated electricity price.  Cost
per million tokens is the cost of one second of the system over the tokens it
produces in that second, times a million.

Examples
--------
>>> p = params()
>>> capex = capex_usd(relative_cost=1.0, h100_equivalents=1.0, params=p)   # one H100 and its host share
>>> round(capex)
31500
>>> round(usd_per_million_tokens(1000.0, capex, 1000.0, p), 4)
0.2263
"""

from __future__ import annotations

from .. import units
from .params import Params, params as get_params

__all__ = ["capex_usd", "tco_usd_per_s", "usd_per_million_tokens", "system_cost", "params"]


def params(overrides=None) -> Params:
    """The silicon parameters (the ``tco.*`` keys are used here)."""
    return get_params(overrides)


def capex_usd(*, relative_cost: float, h100_equivalents: float, params: Params | dict | None = None) -> float:
    """Capital cost in US dollars of equipment worth ``relative_cost`` H100s plus hosts for its silicon."""
    p = get_params(params)
    return relative_cost * p["tco.h100_price_usd"] + h100_equivalents * p["tco.host_usd_per_h100e"]


def tco_usd_per_s(capex: float, power_W: float, params: Params | dict | None = None) -> float:
    """Dollars per second of ownership: amortized capital plus energy at the PUE."""
    p = get_params(params)
    life = p["tco.life_years"] * units.SECONDS_PER_YEAR
    energy = power_W * p["tco.pue"] * p["tco.electricity_usd_per_kWh"] / units.J_PER_KWH
    return capex / life + energy


def usd_per_million_tokens(tokens_per_s: float, capex: float, power_W: float,
                           params: Params | dict | None = None) -> float:
    """Cost of a million tokens (US dollars) at ``tokens_per_s`` on equipment of ``capex`` drawing ``power_W``."""
    if not tokens_per_s > 0:
        return float("inf")
    return tco_usd_per_s(capex, power_W, params) / tokens_per_s * 1e6


def system_cost(*, n_gpus, gpu_relative_cost, network_cost_per_gpu, h100e_per_gpu, watts, tokens_per_s,
                params: Params | dict | None = None) -> dict:
    """Capital cost, dollars per second and per million tokens of ``n_gpus`` GPUs and their network share.

    Array-friendly: any argument, or any value of a :class:`Params` built from
    arrays of samples, broadcasts (the study's Monte Carlo uses that).
    """
    p = get_params(params)
    capex = capex_usd(relative_cost=n_gpus * (gpu_relative_cost + network_cost_per_gpu),
                      h100_equivalents=n_gpus * h100e_per_gpu, params=p)
    per_s = tco_usd_per_s(capex, watts, p)
    return {"capex_usd": capex, "usd_per_s": per_s, "usd_per_million_tokens": per_s / tokens_per_s * 1e6}
