"""Shared helpers for the experiment tests: small populations and configs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from experiments import population


@pytest.fixture
def h100() -> population.Population:
    """A small H100 economy: 6 providers, 3 training labs, 10 inference users."""
    settings: dict[str, Any] = {"preset": "h100", "providers": 6, "training": 3, "inference": 10,
                                "market_makers": 1, "momentum": 1, "snipers": 1}  # fmt: skip
    return population.build(settings, 3000, np.random.default_rng([7, 0]))
