"""Market-design experiments on the cfx engine.

Simulations run on the real matching engine (``exchange.engine``): compiled loops draw the
agents' orders and call the engine's kernels directly. See ``docs/experiments.md``.

- :func:`experiments.gode_sunder.run`: reproduce Gode & Sunder (1993), ZI-U and ZI-C traders
  in five markets, beside the published efficiencies.
- :func:`experiments.scenarios.run`: one run of a mechanism (continuous, batch or opening
  auction, or a non-market baseline) on a GPU-market population.
- :func:`experiments.runner.run_experiment`: a TOML config's grid of runs, on Ray, with a
  CSV, plots and a Markdown report.

The names below load on first use, so importing :mod:`experiments.cli` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from exchange.engine.numba_cache import use_versioned_cache

use_versioned_cache()  # before any compiled function is defined

_LAZY = {
    "ConfigError": "experiments.config",
    "load": "experiments.config",
    "parse": "experiments.config",
    "ExperimentResult": "experiments.runner",
    "run_experiment": "experiments.runner",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'experiments' has no attribute {name!r}")
