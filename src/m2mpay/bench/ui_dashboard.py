"""`dashboard_latency_ms` of `m2mpay bench ui`: a payment to its point in the dashboard.

A second node process on the bench node's chain is the payee; the bench node opens a
channel to it through its API. The dashboard is opened logged in; then, in the page and
on the page's clock, each payment is asked of the node's API (`POST
/v1/channels/{id}/payments`, answered once the payee holds it) while a MutationObserver
waits for the payments chart's `data-points` to grow (the chart sets it once uPlot has
the point) and then for the next frame, when the point is on screen. The node tells the
page of the payment through its event stream only; nothing polls.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Final

import httpx

from m2mpay.bench.daemons import NodeProcess
from m2mpay.errors import M2MPayError

if TYPE_CHECKING:
    from m2mpay.bench.ui import UiRig

__all__ = ["dashboard_latency"]

_ROUTE: Final = "/dashboard"
_TIMEOUT_MS: Final = 60_000
_WARM_UP: Final = 6
# In the page: one payment through the API, then until its point is drawn; ms.
_PAY_AND_WATCH: Final = """
async ({ path, token, waitMs }) => {
  const figure = document.querySelector('[data-testid="payments-chart"] figure');
  const before = Number(figure.dataset.points);
  const drawn = new Promise((resolve) => {
    const watch = new MutationObserver(() => {
      if (Number(figure.dataset.points) > before) {
        watch.disconnect();
        requestAnimationFrame(() => resolve(performance.now()));
      }
    });
    watch.observe(figure, { attributes: true, attributeFilter: ["data-points"] });
    setTimeout(() => { watch.disconnect(); resolve(null); }, waitMs);
  });
  const started = performance.now();
  const answer = await fetch(path, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ amount: "1" }),
  });
  if (!answer.ok) throw new Error(`the node answered ${answer.status}: ${await answer.text()}`);
  const at = await drawn;
  return at === null ? null : at - started;
}
"""


async def dashboard_latency(rig: UiRig, payments: int) -> float:
    """The median, in ms, of `payments` payments to their points on the dashboard."""
    node = rig.node
    peer = NodeProcess(
        Path(node.data_dir).parent / "payee", "--no-mqtt", "--chain-dir", str(node.data_dir)
    )
    rig.say("starting a payee node on the same chain and opening a channel to it")
    peer.start()
    try:
        token = str(node.ready["api_token"])
        async with httpx.AsyncClient(
            base_url=node.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api:
            (await api.post("/v1/wallet/faucet", json={})).raise_for_status()
            opened = await api.post(
                "/v1/channels",
                json={
                    "peer": peer.ready["address"],
                    "endpoint": peer.ready["peer_endpoint"],
                    "deposit": str(10**18),
                },
            )
            opened.raise_for_status()
            channel = opened.json()["channel_id"]
        context = await rig.context(_ROUTE)
        try:
            page = await context.new_page()
            await page.goto(f"{node.url}/app/#{_ROUTE}")
            await page.wait_for_selector(f'main[data-ready="{_ROUTE}"]', timeout=_TIMEOUT_MS)
            # The page's event stream may still be connecting: payments not counted until
            # one's point is drawn (which also warms both nodes' paths).
            ask = {"path": f"/v1/channels/{channel}/payments", "token": token, "waitMs": 5_000}
            for _ in range(_WARM_UP):
                if await page.evaluate(_PAY_AND_WATCH, ask) is not None:
                    break
            else:
                raise M2MPayError("the dashboard drew no point for a payment")
            rig.say(f"{payments} payments, each to its point in the dashboard's chart")
            times = []
            for _ in range(payments):
                took = await page.evaluate(_PAY_AND_WATCH, ask)
                if took is None:
                    raise M2MPayError("a payment's point was not drawn within 5 s")
                times.append(float(took))
        finally:
            await context.close()
        return round(statistics.median(times), 1)
    finally:
        peer.stop()
