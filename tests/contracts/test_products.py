"""Products: the two GPU models, their host share per GPU and default economics."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from contracts import PRODUCTS, Product, UnknownProduct, get_product


def test_the_products_are_a100_and_h100_in_code_order() -> None:
    assert list(PRODUCTS) == ["A100", "H100"]
    assert all(code == product.code for code, product in PRODUCTS.items())


def test_h100_describes_one_sxm_gpu_and_its_host_share() -> None:
    h100 = get_product("H100")
    assert h100.gpu_model == "NVIDIA H100 SXM 80GB"
    assert h100.gpu_memory_gb == 80
    assert (h100.vcpus, h100.ram_gb, h100.local_nvme_gb, h100.network_gbps) == (26, 225, 3840, 400)


def test_a100_describes_one_sxm_gpu_and_its_host_share() -> None:
    a100 = get_product("A100")
    assert a100.gpu_model == "NVIDIA A100 SXM 80GB"
    assert a100.gpu_memory_gb == 80
    assert (a100.vcpus, a100.ram_gb, a100.local_nvme_gb, a100.network_gbps) == (12, 144, 1920, 200)


def test_default_economics_are_exact() -> None:
    h100 = get_product("H100")
    assert h100.initial_margin_bps == 2000
    assert h100.initial_margin_rate == Decimal("0.2")
    assert h100.price_band == Decimal("0.5")
    assert h100.reference_price_ticks == 350
    assert get_product("A100").reference_price_ticks == 150


def test_products_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_product("H100").vcpus = 1  # type: ignore[misc]


@pytest.mark.parametrize("code", ["V100", "h100", "", " H100", None, 100])
def test_unknown_product_is_refused_with_the_known_ones(code: object) -> None:
    with pytest.raises(UnknownProduct, match="A100, H100") as info:
        get_product(code)  # type: ignore[arg-type]
    assert info.value.code == "UNKNOWN_PRODUCT"
    assert isinstance(info.value, ValueError)


def test_a_product_refuses_non_positive_or_non_int_figures() -> None:
    fields = dataclasses.asdict(get_product("H100"))
    with pytest.raises(ValueError, match="vcpus"):
        Product(**{**fields, "vcpus": 0})
    with pytest.raises(ValueError, match="ram_gb"):
        Product(**{**fields, "ram_gb": 225.0})
    with pytest.raises(ValueError, match="initial_margin_bps above"):
        Product(**{**fields, "initial_margin_bps": 10_001})
