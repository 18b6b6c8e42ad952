"""Every verb, every option, every spec field: bad input is one line on stderr and exit status 2, never a traceback.

The verbs are found by walking the parser, so a verb added later is fuzzed
too (it needs a fast base command line in ``BASE``, or the test says so).
Spec fields are found by reading the built-in files: every parameter of the
small topology specs, every field of the small scenarios and every key of the
default study is replaced by values of the wrong type or range.
"""

import argparse
import tomllib
from pathlib import Path

import pytest

from ocsnet import folders
from ocsnet.cli import build_parser, main

# A fast command line per verb; {tmp} is a scratch folder.  Values of options are fuzzed one at a time.
BASE = {
    "topo list": [],
    "topo build": ["small-ring", "-o", "{tmp}/f.json"],
    "topo info": ["small-ring"],
    "topo draw": ["small-ring", "-o", "{tmp}/f.png"],
    "traffic": ["--model", "llama3-70b", "--mode", "decode", "--tp", "8", "--batch", "1", "--context", "128"],
    "flow": ["--fabric", "small-ring", "--traffic", "ring", "--size", "1MB"],
    "schedule list": [],
    "schedule solve": ["small-ring-synthetic", "--time-limit", "2", "-o", "{tmp}/s.json"],
    "schedule check": ["small-ring-synthetic", "{tmp}/missing.json"],
    "schedule plot": ["{tmp}/missing.json", "-o", "{tmp}/g.png"],
    "compare": ["--models", "llama3-70b", "--modes", "decode", "-o", "{tmp}/r", "--quiet", "--no-figures"],
    "validate": ["--quick", "--only", "units"],
    "sweep run": None,          # starts a Dask cluster: covered by tests/test_sweep.py
    "sweep status": ["{tmp}/missing"],
    "sweep report": ["{tmp}/missing"],
    "sweep knobs": [],
    "sweep list": [],
    "catalog list": [],
    "catalog show": ["h100-sxm"],
    "serve": ["--model", "llama3-70b", "--fabric", "small-ring", "--tp", "8", "--requests", "20", "--rate", "1"],
    "faults inject": ["small-ring", "--fail", "gpu:1", "--traffic", "ring", "--size", "1MB"],
    "faults blast": ["small-ring", "--gpus-per-replica", "4"],
    "faults availability": ["small-ring", "--gpus-per-replica", "4", "--days", "10"],
    "silicon": ["--fractions", "1,1/4"],
    "faults resolve": ["small-ring-synthetic", "--fail", "port:1/0"],
}
# Verbs whose accepted values start long runs: fuzzed with values no option accepts.
HEAVY = {"serve", "faults availability", "faults resolve"}
# Options whose any value is valid (output paths) and would start real work; not fuzzed.
FREE = {"-o", "--output", "--path"}
BAD_VALUES = ["x", "-1", "nan", "inf", "", "1e999", "[", "0.5"]


class _Accepted(Exception):
    """Raised instead of running the study once its configuration passed the checks."""


@pytest.fixture
def no_study(monkeypatch):
    import ocsnet.evaluation as ev

    def checked_only(cfg=None, **kw):
        ev.study_config(cfg)
        raise _Accepted

    monkeypatch.setattr(ev, "run_study", checked_only)


def _verbs():
    out = {}

    def walk(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[" ".join(prefix)] = parser
            return
        for name, sp in subs[0].choices.items():
            walk(sp, prefix + [name])

    walk(build_parser(), [])
    return out


VERBS = _verbs()


def _run(argv, capsys):
    """Exit status and stderr of one in-process run; an accepted study counts as success."""
    try:
        code = main(argv)
    except _Accepted:
        code = 0
    except SystemExit as e:                      # argparse usage errors
        code = e.code
    except Exception as e:  # noqa: BLE001 - a leak: reported with the command line
        capsys.readouterr()
        return 99, f"Traceback: {type(e).__name__}: {e}"
    err = capsys.readouterr().err
    return code, err


def _problems(argv, code, err):
    if "Traceback" in err or code not in (0, 2):
        return [f"{' '.join(argv)}: exit {code}: {err.strip()[-300:]}"]
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and not ln.startswith("ocsnet: ")
             and not ln.startswith("[") and not ln.startswith("usage:") and "overrides the" not in ln]
    if code == 2 and len(lines) != 1:
        return [f"{' '.join(argv)}: {len(lines)} error lines: {err.strip()[-300:]}"]
    return []


def test_every_verb_has_a_base_command():
    assert set(VERBS) == set(BASE), set(VERBS) ^ set(BASE)


@pytest.mark.parametrize("verb", sorted(v for v in BASE if BASE[v] is not None))
def test_every_option_of_every_verb(verb, tmp_path, monkeypatch, capsys, no_study):
    monkeypatch.chdir(tmp_path)
    base = [a.replace("{tmp}", str(tmp_path)) for a in BASE[verb]]
    words = verb.split()
    parser = VERBS[verb]
    problems = []
    code, err = _run(words + base, capsys)
    problems += _problems(words + base, code, err)
    positionals = [a for a in parser._actions if not a.option_strings and a.dest not in ("help",)]
    options = [a for a in parser._actions if a.option_strings and a.nargs != 0
               and not isinstance(a, argparse._HelpAction) and not FREE & set(a.option_strings)]
    for value in (["x", "nan", ""] if verb in HEAVY else BAD_VALUES):
        for a in options:
            opt = a.option_strings[-1]
            argv = list(base)
            if opt in argv:
                argv[argv.index(opt) + 1] = value
            else:
                argv += [opt, value]
            code, err = _run(words + argv, capsys)
            problems += _problems(words + argv, code, err)
        for i, a in enumerate(positionals):
            if a.nargs == "?" and not base:
                argv = [value]
            elif i < len(base) and not base[i].startswith("-"):
                argv = list(base)
                argv[i] = value
            else:
                continue
            code, err = _run(words + argv, capsys)
            problems += _problems(words + argv, code, err)
    assert not problems, "\n".join(problems)


# -- spec fields -----------------------------------------------------------------------------------

BAD_TOML = ['"x"', "-1", "nan", "inf", "[]", "{}", "true", "2.5"]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def _dump(data: dict) -> str:
    top = [f'"{k}" = {_toml_value(v)}' for k, v in data.items()]
    return "\n".join(top) + "\n"


def _spoiled(data: dict):
    """(path of the field, data with that field replaced by a bad value), for every field at depth <= 2."""
    for k, v in data.items():
        subs = v.items() if isinstance(v, dict) else [(None, v)]
        for k2, v2 in subs:
            for bad in BAD_TOML:
                new = {kk: (dict(vv) if isinstance(vv, dict) else vv) for kk, vv in data.items()}
                if k2 is None:
                    new[k] = tomllib.loads(f"x = {bad}")["x"]
                else:
                    new[k][k2] = tomllib.loads(f"x = {bad}")["x"]
                yield (f"{k}.{k2}" if k2 else k), bad, new


def _fuzz_files(tmp_path, capsys, folder, names, argv_for, skip=()):
    problems = []
    for name in names:
        data = tomllib.loads(folders.find(folder, name, folder).read_text())
        for field, bad, new in _spoiled(data):
            if field in skip or (field, bad) in skip:
                continue
            p = tmp_path / f"{name}.toml"
            p.write_text(_dump(new))
            argv = argv_for(p)
            code, err = _run(argv, capsys)
            problems += [f"[{name}.{field} = {bad}] " + x for x in _problems(argv, code, err)]
    return problems


def test_every_field_of_the_small_topology_specs(tmp_path, capsys):
    names = [n for n in folders.names("topologies") if n.startswith("small-")]
    assert len(names) >= 6
    problems = _fuzz_files(tmp_path, capsys, "topologies", names, lambda p: ["topo", "info", str(p)],
                           skip={"description"})
    assert not problems, "\n".join(problems)


def test_every_field_of_the_small_scenarios(tmp_path, capsys):
    names = [n for n in folders.names("schedules") if n.startswith("small-")]
    assert names
    problems = _fuzz_files(tmp_path, capsys, "schedules", names,
                           lambda p: ["schedule", "solve", str(p), "--time-limit", "2", "-o", str(p) + ".json"],
                           skip={"description"})
    assert not problems, "\n".join(problems)


def test_every_key_of_the_default_study(tmp_path, capsys, no_study):
    # empty lists and tables are valid for these keys (no sweep, defaults kept): the study would run
    skip = {"description", ("sweep_models", "[]"), ("variants", "[]"), ("prefill", "{}"), ("decode", "{}"),
            ("baseline.overrides", "{}")}
    problems = _fuzz_files(tmp_path, capsys, "studies", ["lite-vs-h100"],
                           lambda p: ["compare", "--config", str(p), "-o", str(Path(p).parent / "r")], skip=skip)
    assert not problems, "\n".join(problems)
