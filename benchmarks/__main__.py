"""Run every benchmark: ``python -m benchmarks [--quick] [name ...]``."""

import argparse
import importlib
import pkgutil
import sys
import time

import benchmarks


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("names", nargs="*", help="benchmark modules to run (default: all), e.g. bench_topology")
    ap.add_argument("--quick", action="store_true", help="smallest sizes only")
    a = ap.parse_args()
    names = a.names or sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    for name in names:
        mod = importlib.import_module(f"benchmarks.{name}")
        print(f"\n# {name}")
        t0 = time.perf_counter()
        mod.main(quick=a.quick)
        print(f"\n({name}: {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
