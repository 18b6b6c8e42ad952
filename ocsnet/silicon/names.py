"""The silicon model's choices, in one light module (no numpy): what the CLI and checks list.

Stage 1 (silicon model; see docs/design.md, "Silicon").
"""

#: Network I/O kinds of a die: co-packaged optics, copper SerDes, SerDes to a pluggable module.
IO_KINDS = ("cpo", "pluggable", "copper")
#: How a Lite-GPU uses its shoreline: all of it, or the parent's bandwidth-to-compute ratio.
NETWORKS = ("shoreline", "parent-ratio")
#: Die yield models (:mod:`ocsnet.silicon.yields`).
YIELD_MODELS = ("poisson", "murphy", "seeds", "bose-einstein", "negative-binomial")
#: Fractions of the parent die that ``ocsnet silicon`` and the study tabulate by default.
DEFAULT_FRACTIONS = ("1", "1/2", "1/4", "1/8", "1/16")
