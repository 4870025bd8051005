"""Products: what one GPU-hour of each deliverable GPU model is, and its default economics.

A GPU-hour delivered is one GPU of the stated model for one hour, together with at least the
host share below (vCPU, RAM, local NVMe, network). Typical clusters sell 8-GPU nodes, so the
host figures are per GPU: one eighth of a common 8-GPU node, rounded down to a floor that the
usual cloud and specialist instance types meet (approximate, 2024-2026 figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from contracts.errors import UnknownProduct

#: Basis points in one whole (100%).
BPS: int = 10_000


@dataclass(frozen=True)
class Product:
    """One deliverable GPU model, its minimum host share per GPU, and default contract terms.

    Host resources are minimums **per GPU**: a buyer of 8 GPU-hours in the same hour gets at
    least eight times each figure. ``network_gbps`` is the GPU fabric (InfiniBand, RoCE or
    EFA) share per GPU, not the front-end network.

    The economics are the defaults :func:`contracts.spec_for` uses:
    ``reference_price_ticks`` is in ticks of the default tick size 0.01 USD (so: cents per
    GPU-hour), ``initial_margin_bps`` and ``price_band_bps`` are basis points
    (2000 = 20%) of the contract value and of the reference price.
    """

    code: str
    gpu_model: str
    gpu_memory_gb: int
    vcpus: int
    ram_gb: int
    local_nvme_gb: int
    network_gbps: int
    reference_price_ticks: int
    initial_margin_bps: int
    price_band_bps: int

    def __post_init__(self) -> None:
        for name in (
            "gpu_memory_gb",
            "vcpus",
            "ram_gb",
            "local_nvme_gb",
            "network_gbps",
            "reference_price_ticks",
            "initial_margin_bps",
            "price_band_bps",
        ):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise ValueError(
                    f"product {self.code}: {name} must be a positive int, not {value!r}"
                )
        if self.initial_margin_bps > BPS:
            raise ValueError(f"product {self.code}: initial_margin_bps above {BPS} (100%)")

    @property
    def initial_margin_rate(self) -> Decimal:
        """Return the default initial margin rate as an exact fraction (``Decimal("0.2")``)."""
        return Decimal(self.initial_margin_bps) / BPS

    @property
    def price_band(self) -> Decimal:
        """Return the default price band as an exact fraction of the reference price."""
        return Decimal(self.price_band_bps) / BPS


H100 = Product(
    code="H100",
    gpu_model="NVIDIA H100 SXM 80GB",
    gpu_memory_gb=80,
    vcpus=26,
    ram_gb=225,
    local_nvme_gb=3840,
    network_gbps=400,
    reference_price_ticks=350,  # 3.50 USD: between spot (2-5) and 1-year reserved (4-8)
    initial_margin_bps=2000,
    price_band_bps=5000,
)

A100 = Product(
    code="A100",
    gpu_model="NVIDIA A100 SXM 80GB",
    gpu_memory_gb=80,
    vcpus=12,
    ram_gb=144,
    local_nvme_gb=1920,
    network_gbps=200,
    reference_price_ticks=150,  # 1.50 USD: between spot (0.5-2) and 1-year reserved (1.5-3)
    initial_margin_bps=2000,
    price_band_bps=5000,
)

#: Every product, by code, in code order.
PRODUCTS: dict[str, Product] = {p.code: p for p in sorted((A100, H100), key=lambda p: p.code)}


def get_product(code: str) -> Product:
    """Return the product with this code; raise :class:`UnknownProduct` for any other."""
    product = PRODUCTS.get(code) if isinstance(code, str) else None
    if product is None:
        known = ", ".join(PRODUCTS)
        raise UnknownProduct(f"unknown product {code!r}: the products are {known}")
    return product
