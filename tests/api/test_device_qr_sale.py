"""Which sale a device's display shows (`GET /v1/devices/{id}/qr`): its running sale,
else its latest one, by its offers in the node's book; never a rejected one or a
purchase; the device's id in any case; 404 while it has sold nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from m2mpay.api.errors import ApiError
from m2mpay.api.gateway import Gateway
from m2mpay.api.routes_stream_qr import _current_sale
from m2mpay.stream.state import SessionPhase

DEVICE = "0x" + "ab" * 20


def _gateway(offers: dict[str, str], sessions: list[SimpleNamespace]) -> Gateway:
    entries = [
        SimpleNamespace(offer=SimpleNamespace(offer_id=offer), device=device)
        for offer, device in offers.items()
    ]
    book = SimpleNamespace(entries=lambda: entries)
    return cast(
        Gateway,
        SimpleNamespace(offer_book=book, sessions=SimpleNamespace(sessions=lambda: sessions)),
    )


def _sale(
    session: int, offer: str, phase: SessionPhase, started: int, **more: Any
) -> SimpleNamespace:
    return SimpleNamespace(
        session_id=bytes([session]) * 32,
        offer=SimpleNamespace(offer_id=offer),
        phase=phase,
        started_ms=started,
        we_sell=more.get("we_sell", True),
    )


def test_the_running_sale_is_shown_before_a_later_ended_one() -> None:
    gw = _gateway(
        {"wind": f"{DEVICE}/energy", "other": "0x" + "cd" * 20 + "/energy"},
        [
            _sale(1, "wind", SessionPhase.ACTIVE, 100),
            _sale(2, "wind", SessionPhase.STOPPED, 200),
            _sale(3, "other", SessionPhase.ACTIVE, 300),  # another device's
        ],
    )
    assert _current_sale(gw, DEVICE.upper()) == bytes([1]) * 32


def test_without_a_running_sale_the_latest_is_shown_never_a_rejected_one_or_a_purchase() -> None:
    gw = _gateway(
        {"wind": f"{DEVICE}/energy"},
        [
            _sale(1, "wind", SessionPhase.STOPPED, 100),
            _sale(2, "wind", SessionPhase.STOPPED, 200),
            _sale(3, "wind", SessionPhase.REJECTED, 300),
            _sale(4, "wind", SessionPhase.ACTIVE, 400, we_sell=False),
        ],
    )
    assert _current_sale(gw, DEVICE) == bytes([2]) * 32


def test_a_device_that_has_sold_nothing_is_404() -> None:
    gw = _gateway({"wind": f"{DEVICE}/energy"}, [_sale(1, "wind", SessionPhase.REJECTED, 1)])
    with pytest.raises(ApiError) as refused:
        _current_sale(gw, DEVICE)
    assert refused.value.status == 404
    with pytest.raises(ApiError):
        _current_sale(_gateway({}, []), DEVICE)
