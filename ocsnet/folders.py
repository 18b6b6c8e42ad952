"""Where ocsnet finds its data: the folders shipped in the package, then the user's.

The ground floor of the pipeline: this module knows files, not GPUs or fabrics.
Four kinds of folder hold TOML files:

==============  ===============================  =========================================
folder          read by                          one file is
==============  ===============================  =========================================
``catalog/``    :mod:`ocsnet.hardware`           entries of one kind (``gpus.toml``, ...)
``topologies/`` :mod:`ocsnet.topology.spec`      one named fabric spec
``schedules/``  :mod:`ocsnet.schedule.scenario`  one scheduling scenario
``studies/``    :mod:`ocsnet.evaluation.study`   one study configuration
==============  ===============================  =========================================

The built-in folders are the data packages ``ocsnet.catalog``,
``ocsnet.topologies``, ``ocsnet.schedules`` and ``ocsnet.studies``, read
through :mod:`importlib.resources` only, so an installed wheel works from any
working directory.

A **user folder** has the same layout (any subset of the four sub-folders).
User folders come from the environment variable ``OCSNET_PATH`` (folders
separated by ``:``, read at every call) and from :func:`add_path` (the CLI's
``--path DIR``, :func:`ocsnet.hardware.load_catalog`).  Later folders win:
built-in, then ``OCSNET_PATH`` left to right, then :func:`add_path` in call
order.  A user file or entry that replaces one of the same name says so once
on stderr.

Examples
--------
>>> "lite-ocs" in names("topologies")
True
>>> find("topologies", "lite-ocs", "spec").origin
'built-in'
"""

from __future__ import annotations

import functools
import os
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import SpecError

__all__ = ["FOLDERS", "ENV", "File", "add_path", "add_file", "remove_path", "user_dirs", "builtin", "sources",
           "files", "names", "find", "state", "note_override"]

#: Folder name -> data package holding the built-in files.
FOLDERS = {"catalog": "ocsnet.catalog", "topologies": "ocsnet.topologies", "schedules": "ocsnet.schedules",
           "studies": "ocsnet.studies"}

#: The environment variable listing user folders.
ENV = "OCSNET_PATH"

# Folders added at run time, and single files added to one folder kind: (folder or "", path).
_added: list[tuple[str, str]] = []
_noted: set[tuple] = set()


@dataclass(frozen=True)
class File:
    """One TOML file: its name (the file stem), where to read it and where it came from."""

    name: str
    path: Traversable
    origin: str            # "built-in" or the file's path

    @property
    def builtin(self) -> bool:
        return self.origin == "built-in"

    def read_text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def read_toml(self, where: str | None = None) -> dict:
        """The file's TOML table; :class:`SpecError` naming ``where`` (default: the file) if unreadable or invalid."""
        where = where or (self.path.name if self.builtin else self.origin)
        try:
            return tomllib.loads(self.read_text())
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"{where}: not valid TOML ({e})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"{where}: cannot read ({e})") from None


def state() -> tuple:
    """A cheap key of the current folder configuration (for caches of loaded files)."""
    return os.environ.get(ENV, ""), tuple(_added)


def add_path(path, where: str = "path") -> Path:
    """Add a user folder (searched after ``OCSNET_PATH`` and earlier additions).

    Raises
    ------
    SpecError
        The folder does not exist or holds none of ``catalog/``, ``topologies/``,
        ``schedules/``, ``studies/``.
    """
    p = _check_dir(str(path), where)
    if ("", str(p)) not in _added:
        _added.append(("", str(p)))
    return p


def add_file(folder: str, path) -> Path:
    """Add one TOML file to ``folder`` (e.g. a catalog file), read after every folder's files.

    Raises
    ------
    SpecError
        No such file, or not a ``.toml`` file.
    """
    builtin(folder)
    p = Path(path).expanduser()
    if not p.is_file() or p.suffix != ".toml":
        raise SpecError(f"path: {str(path)!r} is not a TOML file")
    key = (folder, str(p.resolve()))
    if key not in _added:
        _added.append(key)
    return p.resolve()


def remove_path(path) -> None:
    """Forget a folder or file added with :func:`add_path` or :func:`add_file` (no error if unknown)."""
    p = str(Path(path).expanduser().resolve())
    _added[:] = [a for a in _added if a[1] != p]


def _check_dir(text: str, where: str) -> Path:
    p = Path(text).expanduser()
    if not p.is_dir():
        raise SpecError(f"{where}: {text!r} is not a folder")
    if not any((p / k).is_dir() for k in FOLDERS):
        raise SpecError(f"{where}: {text!r} holds none of {', '.join(k + '/' for k in FOLDERS)} "
                        "(a user folder has the layout of the built-in data)")
    return p.resolve()


@functools.lru_cache(maxsize=16)
def _user_dirs(key: tuple) -> tuple[Path, ...]:
    env, added = key
    out: list[Path] = []
    for part in env.split(":"):
        if part.strip():
            d = _check_dir(part.strip(), ENV)
            if d not in out:
                out.append(d)
    for kind, a in added:
        if kind:
            continue
        d = Path(a)
        if d in out:
            out.remove(d)
        out.append(d)
    return tuple(out)


def user_dirs() -> list[Path]:
    """The user folders in search order (``OCSNET_PATH``, then :func:`add_path`)."""
    return list(_user_dirs(state()))


def builtin(folder: str) -> Traversable:
    """The built-in folder ``folder`` (one of :data:`FOLDERS`) as an importlib.resources Traversable."""
    if folder not in FOLDERS:
        raise SpecError(f"folder: {folder!r} is not one of {', '.join(FOLDERS)}")
    try:
        return resources.files(FOLDERS[folder])
    except ModuleNotFoundError:
        raise SpecError(f"{folder}: the built-in data package {FOLDERS[folder]} is not installed; reinstall "
                        "ocsnet (an editable install made before the data folders were packaged needs "
                        "`pip install -e .` again)") from None


def _toml_files(folder: Traversable) -> list[Traversable]:
    try:
        items = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((p for p in items if p.name.endswith(".toml") and p.is_file()), key=lambda p: p.name)


def sources(folder: str) -> list[File]:
    """Every TOML file of ``folder``, built-in first, then each user folder's, in search order."""
    out = [File(p.name[: -len(".toml")], p, "built-in") for p in _toml_files(builtin(folder))]
    for d in user_dirs():
        out.extend(File(p.stem, p, str(p)) for p in _toml_files(d / folder))
    out.extend(File(Path(a).stem, Path(a), a) for kind, a in _added if kind == folder)
    return out


def note_override(what: str, name: str, new: str, old: str) -> None:
    """Say once on stderr that ``new`` (a user file) replaces ``old`` for ``what`` ``name``."""
    key = (what, name, new, old)
    if key in _noted:
        return
    _noted.add(key)
    print(f"ocsnet: {what} {name!r} from {new} overrides the {old if old == 'built-in' else 'one from ' + old}",
          file=sys.stderr)


def files(folder: str) -> dict[str, File]:
    """The named files of ``topologies``, ``schedules`` or ``studies``: the last folder wins a name.

    An override is reported once on stderr (:func:`note_override`).
    """
    out: dict[str, File] = {}
    for f in sources(folder):
        if f.name in out:
            note_override(_WHAT[folder], f.name, f.origin, out[f.name].origin)
        out[f.name] = f
    return out


_WHAT = {"catalog": "catalog file", "topologies": "topology spec", "schedules": "scenario", "studies": "study"}


def names(folder: str) -> list[str]:
    """The names in ``folder`` (built-in and user), sorted."""
    return sorted(files(folder))


def find(folder: str, name_or_path, what: str) -> File:
    """One file of ``folder`` by name, or a path to a TOML file.

    A value ending in ``.toml`` or holding a path separator is a path;
    anything else a name.

    Raises
    ------
    SpecError
        No such file, or an unknown name (the message lists the known ones).
    """
    text = str(name_or_path)
    p = Path(text)
    if text.endswith(".toml") or len(p.parts) > 1:
        if not p.is_file():
            raise SpecError(f"{what}: no such file {text!r}")
        return File(p.stem, p, str(p))
    table = files(folder)
    if text not in table:
        raise SpecError(f"{what}: unknown name {text!r}; known: {', '.join(sorted(table)) or '(none)'}")
    return table[text]
