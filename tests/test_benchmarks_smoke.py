"""Every benchmark runs in quick mode, so the benchmarks never rot."""

import importlib
import pkgutil

import pytest

import benchmarks

NAMES = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


@pytest.mark.parametrize("name", NAMES)
def test_benchmark_quick(name, capsys):
    importlib.import_module(f"benchmarks.{name}").main(quick=True)
    out = capsys.readouterr().out
    assert "##" in out  # printed at least one table
