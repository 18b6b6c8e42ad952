"""The choices the flow model offers, by name (no heavy imports: the CLI reads them for --help).

Stage: flow model (see docs/design.md, "The flow model").
"""

__all__ = ["FIDELITIES", "METHODS", "PATTERNS", "UNREACHABLE"]

#: The two fidelities that share one interface: congestion-aware max-min rates
#: (fluid completion times) and the congestion-free alpha-beta model.
FIDELITIES = ("max-min", "alpha-beta")
#: Routing methods of :func:`ocsnet.flow.route`.
METHODS = ("shortest", "ecmp")
#: What :func:`ocsnet.flow.route` does with a flow that has no path: raise, or report it in
#: ``Routes.unreachable``.
UNREACHABLE = ("raise", "report")
#: Synthetic patterns: every ordered pair, a random cyclic permutation, i -> i+1,
#: everyone -> rank 0, and every rank to one uniformly random other rank.
PATTERNS = ("all-to-all", "permutation", "ring", "incast", "random")
