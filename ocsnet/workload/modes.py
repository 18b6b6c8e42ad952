"""The modes of a model step, by name (no heavy imports: the CLI reads them for --help).

Stage: workload (see docs/design.md, "Workload").
"""

__all__ = ["MODES", "INFERENCE_MODES"]

#: Modes of a step: inference prefill and decode, and a training step.
MODES = ("prefill", "decode", "train")
#: The modes the per-layer evaluation and the study time (latency and tokens/s).
INFERENCE_MODES = MODES[:2]
