"""Study configurations as files: ``studies/<name>.toml``.

Stage: evaluation (see docs/design.md).  The default study is the built-in
file ``studies/lite-vs-h100.toml`` (shipped inside the package as
``ocsnet.studies``); :data:`DEFAULT_STUDY` is what it loads into.  Any other
study file, built-in, in a user folder (``OCSNET_PATH``, ``--path``) or given
by path, holds a subset of the same keys: the overrides of the default.  A
JSON file of overrides is read too.

:func:`check_types` checks the type and range of every key the default study
has; keys it does not know (per-analysis tables) are left to
:func:`ocsnet.evaluation.study.study_config`, which refuses unknown ones by
name.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from .. import checks, folders
from ..errors import SpecError

__all__ = ["DEFAULT_STUDY_NAME", "DEFAULT_STUDY", "LATENCY_LIMITS", "load_study", "list_studies", "check_types"]

#: The name of the default study file.
DEFAULT_STUDY_NAME = "lite-vs-h100"
#: How the plan search limits latency: ``"slo"``, a plan's step latency (TTFT in prefill, TPOT in decode)
#: within the model's SLO preset (catalog ``slos.toml``; models without one fall back to the relative
#: rule); ``"relative"``, at most ``latency_vs_baseline`` times the H100 baseline's.
LATENCY_LIMITS = ("slo", "relative")

# Keys whose default is "not set" (TOML has no null): missing from the default file, None in the dict.
_UNSET = ("reconfig_delay_us", "kv_dtype")


def list_studies() -> list[str]:
    """Names of the study files, built-in and from user folders, sorted (sweep specs, with a [sweep] table, excluded)."""
    out = []
    for name, f in folders.files("studies").items():
        try:
            if "sweep" not in tomllib.loads(f.read_text()):
                out.append(name)
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            out.append(name)
    return sorted(out)


def _read(f: folders.File) -> dict[str, Any]:
    text = f.read_text()
    where = f.origin if not f.builtin else f"studies/{f.name}.toml"
    if str(f.path).endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"{where}: not valid JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(data, dict):
            raise SpecError(f"{where}: the file must hold a JSON object of study keys")
        return data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where}: not valid TOML ({e})") from None


def load_study(name_or_path) -> dict[str, Any]:
    """The keys a study file sets: a study name (``studies/<name>.toml``) or a ``.toml``/``.json`` path.

    Raises
    ------
    SpecError
        No such study or file, or the file is not valid TOML/JSON.
    """
    text = str(name_or_path)
    if text.endswith(".json"):
        p = Path(text)
        if not p.is_file():
            raise SpecError(f"study: no such file {text!r}")
        f = folders.File(p.stem, p, str(p))
    elif text.endswith(".toml") or len(Path(text).parts) > 1 or text in list_studies():
        f = folders.find("studies", name_or_path, "study")
    else:
        raise SpecError(f"study: unknown name {text!r}; known: {', '.join(list_studies()) or '(none)'}")
    try:
        return _read(f)
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"study: cannot read {text!r} ({e})") from None


def _builtin_default() -> dict[str, Any]:
    f = folders.File(DEFAULT_STUDY_NAME, folders.builtin("studies") / f"{DEFAULT_STUDY_NAME}.toml", "built-in")
    data = _read(f)
    for k in _UNSET:
        data.setdefault(k, None)
    return data


#: The built-in default study (``studies/lite-vs-h100.toml``).
DEFAULT_STUDY: dict[str, Any] = _builtin_default()


def _strings(name, v, options=None, *, empty=False):
    if isinstance(v, str) or not isinstance(v, (list, tuple)) or (not v and not empty):
        raise SpecError(f"{name}: expected a non-empty list of names, got {checks.kind_of(v)} {v!r}")
    for i, x in enumerate(v):
        checks.string(f"{name}[{i}]", x)
        if options is not None:
            checks.choice(f"{name}[{i}]", x, options)
    return v


def _table(name, v, keys=None):
    if not isinstance(v, dict):
        raise SpecError(f"{name}: expected a table, got {checks.kind_of(v)} {v!r}")
    if keys is not None:
        for k in v:
            if k not in keys:
                raise SpecError(f"{name}.{k}: unknown key; allowed: {', '.join(keys)}")
    return v


def _sizes(name: str, v, length: str) -> None:
    _table(name, v, ("batch", length))
    for k in ("batch", length):
        if k not in v:
            raise SpecError(f"{name}: missing required key {k!r}")
    b = v["batch"]
    if isinstance(b, (list, tuple)):
        checks.integers(f"{name}.batch", b, lo=1)
    else:
        checks.integer(f"{name}.batch", b, lo=1)
    checks.integer(f"{name}.{length}", v[length], lo=1)


def _fabric(name: str, v, keys) -> None:
    _table(name, v, keys)
    for k in keys:
        if k != "overrides" and k not in v:
            raise SpecError(f"{name}: missing required key {k!r}")
        if k != "overrides":
            checks.string(f"{name}.{k}", v[k])
    _table(f"{name}.overrides", v.get("overrides", {}))


def check_types(cfg: dict[str, Any], where: str = "study") -> None:
    """Check the type and range of every key of the default study present in ``cfg``.

    Raises
    ------
    SpecError
        Naming the key (``study.tp[2]``, ``study.decode.batch``...) and what is allowed.
    """
    for key, v in cfg.items():
        name = f"{where}.{key}"
        if key == "description":
            checks.string(name, v, empty=True)
        elif key in ("models", "algorithms", "sweep_algorithms"):
            _strings(name, v)
        elif key in ("sweep_models", "analyses", "variants"):   # empty: no sweep, no analysis, baseline only
            _strings(name, v, empty=True)
        elif key == "modes":
            _strings(name, v, ("prefill", "decode"))
        elif key in ("tp", "pp", "sweep_tp"):
            checks.integers(name, v, lo=1)
        elif key in ("max_gpus_per_replica", "top_k"):
            checks.integer(name, v, lo=1)
        elif key == "latency_limit":
            if v not in LATENCY_LIMITS:
                raise SpecError(f"{name}: {v!r} is not one of {', '.join(LATENCY_LIMITS)}")
        elif key == "latency_vs_baseline":
            if v is not None and v is not False:      # None, false or 0: no latency limit
                checks.nonnegative(name, v)
        elif key == "reconfig_delay_us":
            if v is not None:
                checks.nonnegative(name, v)
        elif key == "schedule_time_limit_s":
            checks.positive(name, v)
        elif key == "sweep_reconfig_delay_us":
            if isinstance(v, (str, dict)) or not isinstance(v, (list, tuple)) or not v:
                raise SpecError(f"{name}: expected a non-empty list of delays, got {checks.kind_of(v)} {v!r}")
            for i, x in enumerate(v):
                checks.nonnegative(f"{name}[{i}]", x)
        elif key in ("sweep_variant", "objective", "dtype", "calibration"):
            checks.string(name, v)
        elif key == "kv_dtype":
            if v is not None:
                checks.string(name, v)
        elif key == "prefill":
            _sizes(name, v, "seq_len")
        elif key == "decode":
            _sizes(name, v, "context")
        elif key == "baseline":
            _fabric(name, v, ("label", "fabric", "gpu", "overrides"))
        elif key == "lite_fabrics":
            _table(name, v)
            if not v:
                raise SpecError(f"{name}: expected at least one fabric")
            for kind, f in v.items():
                _fabric(f"{name}.{kind}", f, ("fabric", "overrides"))
