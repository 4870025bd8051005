"""Keep numba's on-disk cache in step with the compiled code that other compiled code inlines.

numba drops a cached function when its own source file changes, but not when a function it
calls from another file does: a simulation loop in ``experiments/`` cached before an update
to ``kernels.py`` would go on running the old kernels (inlined into it) against arrays laid
out the new way, and can loop forever. So, unless ``NUMBA_CACHE_DIR`` is set, cfx keeps its
cache in a directory named after a digest of every source file with compiled code or with
constants compiled code reads (:func:`sources`): an update to any of them starts a fresh
cache, compiled once.

:func:`use_versioned_cache` must run before the first ``@njit(cache=True)`` decorator does;
``exchange.engine`` and ``experiments`` call it on import.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba

_ROOT = Path(__file__).resolve().parents[2]
#: Packages whose every Python file counts: compiled code, and the constants it reads (numba
#: bakes a global's value into the machine code), relative to the repository (or
#: site-packages) root.
PACKAGES = ("exchange/engine", "experiments")
#: Single modules outside them that compiled code reads constants from.
MODULES = ("exchange/reasons.py",)


def sources(root: Path = _ROOT) -> list[str]:
    """The files the digest covers, relative to ``root``."""
    found = [
        path.relative_to(root).as_posix()
        for package in PACKAGES
        for path in sorted((root / package).glob("*.py"))
    ]
    return found + list(MODULES)


def sources_digest(root: Path = _ROOT) -> str:
    """A digest of :func:`sources` under ``root`` (missing files count as empty)."""
    digest = hashlib.blake2b(digest_size=8)
    for name in sources(root):
        path = root / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_root() -> Path:
    """Where the versioned caches go: ``$XDG_CACHE_HOME/cfx/numba`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cfx" / "numba"


def use_versioned_cache() -> None:
    """Point numba's cache at this version's directory, unless ``NUMBA_CACHE_DIR`` is set."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    numba.config.CACHE_DIR = str(cache_root() / sources_digest())  # type: ignore[attr-defined]
