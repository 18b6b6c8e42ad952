"""Model catalog: published hyperparameters, computed parameter counts, strict loading."""

import pytest

from ocsnet.errors import SpecError, WorkloadError
from ocsnet.workload import models as M


@pytest.mark.parametrize("name,published", [("gpt3-175b", 175e9), ("llama3-70b", 70.6e9),
                                            ("llama3-405b", 405e9), ("mixtral-8x22b", 141e9)])
def test_param_count_within_2_percent_of_published(name, published):
    m = M.model(name)
    assert m.published_params == published
    assert m.params() == pytest.approx(published, rel=0.02)


def test_mixtral_active_params_near_39b():
    m = M.model("mixtral-8x22b")
    assert m.is_moe and m.experts == 8 and m.experts_per_token == 2
    assert m.active_params() == pytest.approx(39e9, rel=0.03)


def test_llama3_405b_hyperparameters_and_closed_form():
    m = M.model("llama3-405b")
    assert (m.layers, m.hidden_size, m.ffn_size, m.attention_heads, m.kv_heads, m.head_dim) == \
        (126, 16384, 53248, 128, 8, 128)
    h, f = 16384, 53248
    per_layer = h * (128 * 128 + 2 * 8 * 128) + 128 * 128 * h + 3 * h * f + 2 * h
    assert m.layer_params() == per_layer
    assert m.params() == 126 * per_layer + 2 * 128256 * h + h
    assert m.kv_bytes_per_token(2) == 2 * 126 * 8 * 128 * 2


def test_every_number_has_a_source():
    for m in M.models().values():
        for k in ("layers", "hidden_size", "ffn_size", "attention_heads", "kv_heads", "head_dim",
                  "vocab_size", "max_context_tokens", "published_params"):
            assert isinstance(m.source.get(k), str) and m.source[k]


def test_unknown_model_names_known_ones():
    with pytest.raises(WorkloadError, match="unknown name 'gpt5'.*llama3-70b"):
        M.model("gpt5")


def base_entry():
    return {"description": "t", "layers": 2, "hidden_size": 8, "ffn_size": 16, "activation": "gelu",
            "attention_heads": 2, "kv_heads": 1, "head_dim": 4, "vocab_size": 10,
            "max_context_tokens": 32, "tied_embeddings": True, "position_embedding": "rope",
            "norm": "rmsnorm", "linear_bias": False, "published_params": 1.0,
            "source": {k: "test" for k in ("layers", "hidden_size", "ffn_size", "attention_heads", "kv_heads",
                                           "head_dim", "vocab_size", "max_context_tokens", "published_params")}}


@pytest.mark.parametrize("mutate,match", [
    (lambda e: e.update(colour="red"), "unknown key 'colour'"),
    (lambda e: e.pop("layers"), "missing required key 'layers'"),
    (lambda e: e["source"].pop("layers"), r"models.t.layers: number has no source"),
    (lambda e: e.update(activation="tanh"), "activation: 'tanh' is not one of"),
    (lambda e: e.update(kv_heads=3), "kv_heads: 3 must divide"),
    (lambda e: e.update(experts_per_token=2), "experts"),
    (lambda e: e.update(layers=2.5), "layers: expected an integer, got float 2.5"),
    (lambda e: e["source"].update(bogus="x"), "source for unknown key 'bogus'"),
])
def test_strict_loading(mutate, match):
    e = base_entry()
    mutate(e)
    with pytest.raises(SpecError, match=match):
        M._build("t", e)


def test_tiny_model_param_count_by_hand():
    m = M._build("t", base_entry())
    # attention 8*(8+4+4) + 8*8 = 192; mlp 2*8*16 = 256; norms 2*8; embeddings tied 10*8 + final norm 8
    assert m.layer_params() == 192 + 256 + 16
    assert m.params() == 2 * (192 + 256 + 16) + 80 + 8


@pytest.mark.parametrize("mod", ["ocsnet.workload.models", "ocsnet.workload.parallel", "ocsnet.workload.layers",
                                 "ocsnet.workload.step", "ocsnet.traffic.trace", "ocsnet.traffic.build"])
def test_docstring_examples_run(mod):
    import doctest
    import importlib
    res = doctest.testmod(importlib.import_module(mod))
    assert res.attempted > 0 and res.failed == 0
