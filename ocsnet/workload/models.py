"""Transformer model configurations loaded from ``ocsnet/catalog/models.toml``.

Stage 2 of the pipeline (workload).  A :class:`ModelSpec` holds a model's
published hyperparameters; the parameter count is computed from them, not
copied, and the catalog's ``published_params`` is only there to check it.
Adding a model is adding a TOML table: loading is strict (unknown and missing
keys are named, every number needs a ``source``).

Examples
--------
>>> from ocsnet.workload import models
>>> m = models.model("llama3-70b")
>>> m.layers, m.kv_heads, m.is_moe
(80, 8, False)
>>> round(m.params() / 1e9, 1)
70.6
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from .. import checks, folders
from ..errors import SpecError, WorkloadError
from ..hardware import catalog_entries, where as entry_where

__all__ = ["ModelSpec", "model", "models", "ACTIVATIONS"]

# Number of weight matrices in one MLP (or one expert) per activation type.
ACTIVATIONS = {"gelu": 2, "relu": 2, "swiglu": 3}
POSITION_EMBEDDINGS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")

# TOML key -> (type, required)
_FIELDS = {
    "description": (str, True), "layers": (int, True), "hidden_size": (int, True),
    "ffn_size": (int, True), "activation": (str, True), "attention_heads": (int, True),
    "kv_heads": (int, True), "head_dim": (int, True), "vocab_size": (int, True),
    "max_context_tokens": (int, True), "tied_embeddings": (bool, True),
    "position_embedding": (str, True), "norm": (str, True), "linear_bias": (bool, True),
    "published_params": (float, True),
    "experts": (int, False), "experts_per_token": (int, False), "shared_experts": (int, False),
}


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer's hyperparameters.

    Dense models have ``experts == 0``.  For a mixture of experts, ``ffn_size``
    is the size of one expert, each token uses ``experts_per_token`` routed
    experts plus ``shared_experts`` always-on experts of the same size.
    """

    name: str
    description: str
    layers: int
    hidden_size: int
    ffn_size: int
    activation: str
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_context_tokens: int
    tied_embeddings: bool
    position_embedding: str
    norm: str
    linear_bias: bool
    published_params: float
    experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    source: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    # ---- shapes -----------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def q_dim(self) -> int:
        """Width of the query projection, ``attention_heads * head_dim``."""
        return self.attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        """Width of the key (or value) projection, ``kv_heads * head_dim``."""
        return self.kv_heads * self.head_dim

    @property
    def mlp_matrices(self) -> int:
        """Weight matrices per MLP or expert: 2 for gelu, 3 for swiglu."""
        return ACTIVATIONS[self.activation]

    # ---- parameter counts ---------------------------------------------------------
    def attention_params(self) -> int:
        """QKV and output projections (with biases if the model has them)."""
        h = self.hidden_size
        n = h * (self.q_dim + 2 * self.kv_dim) + self.q_dim * h
        if self.linear_bias:
            n += self.q_dim + 2 * self.kv_dim + h
        return n

    def mlp_params(self) -> int:
        """One dense MLP, or one expert, of ``ffn_size``."""
        h, f = self.hidden_size, self.ffn_size
        n = self.mlp_matrices * h * f
        if self.linear_bias:
            n += (self.mlp_matrices - 1) * f + h
        return n

    def norm_params(self) -> int:
        """One normalization: a scale (plus a shift for LayerNorm)."""
        return self.hidden_size * (2 if self.norm == "layernorm" else 1)

    def layer_params(self) -> int:
        """One transformer layer: attention, MLP or experts plus router, two norms."""
        n = self.attention_params() + 2 * self.norm_params()
        if self.is_moe:
            n += (self.experts + self.shared_experts) * self.mlp_params() + self.hidden_size * self.experts
        else:
            n += self.mlp_params()
        return n

    def embedding_params(self) -> int:
        """Token embedding, LM head (unless tied), learned positions, final norm."""
        n = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        if self.position_embedding == "learned":
            n += self.max_context_tokens * self.hidden_size
        return n + self.norm_params()

    def params(self) -> int:
        """Total parameters computed from the hyperparameters."""
        return self.layers * self.layer_params() + self.embedding_params()

    def active_params(self) -> int:
        """Parameters one token uses (routed experts counted ``experts_per_token`` times)."""
        if not self.is_moe:
            return self.params()
        unused = (self.experts - self.experts_per_token) * self.mlp_params()
        return self.params() - self.layers * unused

    def kv_bytes_per_token(self, dtype_bytes: float = 2.0) -> float:
        """KV-cache bytes one token adds over all layers (K and V, every KV head)."""
        return 2.0 * self.layers * self.kv_dim * dtype_bytes


def _build(name: str, entry: dict) -> ModelSpec:
    where = entry_where("models", name)
    extra = set(entry) - set(_FIELDS) - {"source"}
    if extra:
        raise SpecError(f"{where}: unknown key {sorted(extra)[0]!r}; allowed: {', '.join(sorted(_FIELDS))}")
    missing = {k for k, (_, req) in _FIELDS.items() if req} - set(entry)
    if missing:
        raise SpecError(f"{where}: missing required key {sorted(missing)[0]!r}")
    src = entry.get("source", {})
    if not isinstance(src, dict):
        raise SpecError(f"{where}.source: must be a table of field = \"where the number comes from\"")
    bad_src = set(src) - set(entry)
    if bad_src:
        raise SpecError(f"{where}.source: source for unknown key {sorted(bad_src)[0]!r}")
    kw = {}
    for key, (typ, _) in _FIELDS.items():
        if key not in entry:
            continue
        v = entry[key]
        if typ is bool:
            checks.boolean(f"{where}.{key}", v)
        elif typ is str:
            checks.string(f"{where}.{key}", v, empty=key == "description")
        else:
            checks.number(f"{where}.{key}", v)
            if not isinstance(src.get(key), str) or not src.get(key).strip():
                raise SpecError(f"{where}.{key}: number has no source string in [models.{name}.source]")
            if typ is int:
                v = checks.integer(f"{where}.{key}", v, lo=0)
            else:
                v = checks.positive(f"{where}.{key}", v)
        kw[key] = v
    for key in ("layers", "hidden_size", "ffn_size", "attention_heads", "kv_heads", "head_dim",
                "vocab_size", "max_context_tokens"):
        if kw[key] < 1:
            raise SpecError(f"{where}.{key}: {kw[key]} is out of range, allowed [1, inf)")
    for key, allowed in (("activation", tuple(ACTIVATIONS)), ("position_embedding", POSITION_EMBEDDINGS),
                         ("norm", NORMS)):
        if kw[key] not in allowed:
            raise SpecError(f"{where}.{key}: {kw[key]!r} is not one of {', '.join(allowed)}")
    if kw["attention_heads"] % kw["kv_heads"]:
        raise SpecError(f"{where}.kv_heads: {kw['kv_heads']} must divide attention_heads = {kw['attention_heads']}")
    e, k = kw.get("experts", 0), kw.get("experts_per_token", 0)
    if e and not 1 <= k <= e:
        raise SpecError(f"{where}.experts_per_token: {k} is out of range, allowed [1, experts = {e}]")
    if not e and (k or kw.get("shared_experts", 0)):
        raise SpecError(f"{where}.experts: experts_per_token/shared_experts given but experts = 0 (dense)")
    return ModelSpec(name=name, source=dict(src), **kw)


@functools.lru_cache(maxsize=16)
def _models(key: tuple) -> dict[str, ModelSpec]:
    return {name: _build(name, entry) for name, (entry, _) in catalog_entries("models").items()}


def models() -> dict[str, ModelSpec]:
    """All models in the catalog by name."""
    return dict(_models(folders.state()))


def model(name: str | ModelSpec) -> ModelSpec:
    """One model by catalog name (a spec passes through).

    Raises
    ------
    WorkloadError
        Unknown name; the message lists the known ones.
    SpecError
        The catalog entry is malformed.
    """
    if isinstance(name, ModelSpec):
        return name
    checks.string("model", name, error=WorkloadError)
    table = _models(folders.state())
    try:
        return table[name]
    except KeyError:
        raise WorkloadError(f"model: unknown name {name!r}; known: {', '.join(sorted(table))}") from None
