"""The live market dashboard at ``/`` and the public market views it reads beyond SPEC.

The page is plain HTML, CSS and JavaScript modules in ``static/``, served as they are: no
build step and nothing fetched from elsewhere. It loads through the public REST API and
then follows the websocket feed (docs/dashboard.md). ``GET /v1/market/deliveries`` is the
public, anonymised view of the delivery records: what was delivered, never by whom.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from contracts import format_cents
from exchange.gateway.errors import ApiError
from exchange.gateway.models import UpTo1000
from exchange.reasons import Reason

if TYPE_CHECKING:
    from exchange.service import ExchangeService

#: Where the page's files live, shipped inside the package.
STATIC = Path(__file__).with_name("static")

#: Media type per file extension of the page's files.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

router = APIRouter()


class MarketDelivery(BaseModel):
    """One delivery record as the public sees it: no provider or consumer account."""

    delivery_id: int
    symbol: str = Field(examples=["H100-2026-12-05"])
    gpu_hours: int = Field(description="GPU-hours to deliver")
    price: str = Field(description="final settlement price, USD per GPU-hour", examples=["3.50"])
    status: str = Field(examples=["pending", "settled"])


def _service(request: Request) -> ExchangeService:
    svc: ExchangeService = request.app.state.svc
    return svc


def _file(name: str) -> Response:
    path = STATIC / name
    media_type = MEDIA_TYPES.get(path.suffix)
    # only plain names of files that are there: no directories, no way out of static/
    if "/" in name or "\\" in name or name.startswith(".") or media_type is None:
        raise ApiError(Reason.NOT_FOUND, f"no dashboard file {name!r}")
    if not path.is_file():
        raise ApiError(Reason.NOT_FOUND, f"no dashboard file {name!r}")
    return Response(path.read_bytes(), media_type=media_type, headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
async def page() -> Response:
    """Serve the dashboard."""
    return _file("index.html")


@router.get("/dashboard/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    """Serve one of the dashboard's stylesheets or scripts."""
    return _file(name)


@router.get("/v1/market/deliveries", tags=["public"], response_model=list[MarketDelivery])
async def market_deliveries(
    request: Request,
    symbol: Annotated[
        str | None,
        Query(description="Only this contract's; 404 UNKNOWN_SYMBOL if it was never listed."),
    ] = None,
    limit: UpTo1000 = 100,
) -> list[MarketDelivery]:
    """List delivery records, newest first, without the accounts involved."""
    svc = _service(request)
    if symbol is not None:
        svc.known_symbol(symbol)
    newest_first = sorted(svc.state.deliveries.values(), key=lambda d: -d.delivery_id)
    out: list[MarketDelivery] = []
    for d in newest_first:
        if symbol is not None and d.symbol != symbol:
            continue
        out.append(
            MarketDelivery(
                delivery_id=d.delivery_id,
                symbol=d.symbol,
                gpu_hours=d.gpu_hours,
                price=format_cents(d.price * d.tick_cents),
                status=d.status,
            )
        )
        if len(out) == limit:
            break
    return out
