"""The README's Python tour runs as written, and its CLI tour names commands that exist."""

import re
from pathlib import Path

import matplotlib

from ocsnet.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_commands():
    head = README.read_text().split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in head and "make test" in head


def test_readme_python_tour_runs():
    matplotlib.use("Agg")
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(code, str(README), "exec"), {})


def test_readme_cli_tour_parses():
    parser = build_parser()
    block = README.read_text().split("## A tour of the command line", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = re.sub(r"\\\n\s*", " ", block).splitlines()
    cmds = [line.split("#")[0].split() for line in lines if line.strip().startswith("ocsnet")]
    assert len(cmds) >= 10
    for argv in cmds:
        args = parser.parse_args(argv[1:])
        assert callable(args.func)
