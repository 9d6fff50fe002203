// The live dashboard: this node's sessions (bought and sold) charted as they run, its
// payments, its devices (a lamp lit while it is lit), the value chain of its resales, and
// buying time from another node's device. Read once, then kept current from the node's
// event stream: a session or channel event re-reads that one session, a device event
// carries the device's new state; nothing here asks again on a timer.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, formatAmount, nodeInfo, parseAmount } from "../api.js";
import { assetAt, loadAssets } from "../assets.js";
import { LiveChart, plotted, useCharts } from "../chart.jsx";
import { useEvents } from "../sse.js";
import { AmountIn, ErrorBanner, Field, Form, Loading, Select, Table, useReady, useResource } from "../ui.jsx";

const SHOWN_SESSIONS = 6; // running ones first, then the latest stopped

// A gateway without a device bus (an API embedded in another program) has no /v1/devices:
// no devices, said as such, rather than no dashboard.
const noBus = (error) => {
  if (error instanceof ApiError && error.status === 404) return { devices: [] };
  throw error;
};

async function load() {
  const [sessions, devices, resales, info, assets] = await Promise.all([
    api("/v1/sessions"),
    api("/v1/devices").catch(noBus),
    api("/v1/resales"),
    nodeInfo(),
    loadAssets(),
  ]);
  return { sessions: sessions.sessions, devices: devices.devices, resales: resales.resales, info, assets };
}

const seconds = () => Date.now() / 1000;

/** A session's points: [times, units, paid], one per reading of it. */
function pointOf(view) {
  const flow = view.reversed ? view.backward : view.forward;
  return { t: seconds(), units: flow.units, paid: flow.paid, value: flow.value };
}

export function Dashboard() {
  const found = useResource(load);
  const [live, setLive] = useState(null); // {sessions: Map id → {view, points}, devices, payments}
  const reading = useRef(new Set());
  useEffect(() => {
    if (!found.data) return;
    const sessions = new Map(found.data.sessions.map((v) => [v.session_id, { view: v, points: [pointOf(v)] }]));
    setLive({ sessions, devices: found.data.devices, payments: [] });
  }, [found.data]);
  // Ready once its charts can draw too: uPlot is fetched alongside the first reads.
  const charts = useCharts();
  useReady(live !== null && charts !== "loading");

  const reread = async (sessionId) => {
    if (reading.current.has(sessionId)) return; // one reading at a time; the next event reads again
    reading.current.add(sessionId);
    try {
      const view = await api(`/v1/sessions/${sessionId}`);
      setLive((now) => {
        const sessions = new Map(now.sessions);
        const before = sessions.get(sessionId);
        sessions.set(sessionId, { view, points: [...(before?.points ?? []), pointOf(view)] });
        return { ...now, sessions };
      });
    } catch {
      // gone or refused: the next event tries again; the last complete reading stays
    } finally {
      reading.current.delete(sessionId);
    }
  };

  const readDevice = async (deviceId) => {
    try {
      const device = await api(`/v1/devices/${deviceId}`);
      setLive((now) => ({
        ...now,
        devices: [...now.devices.filter((d) => d.device_id !== device.device_id), device],
      }));
    } catch {
      // not registered yet: its registration sends another event
    }
  };

  useEvents(({ event, data }) => {
    if (live === null) return;
    if (event === "session" && data.session_id) reread(data.session_id);
    else if (event === "channel" && data.channel_id) {
      if (data.t === "ev.payment_received" || data.t === "ev.payment_acknowledged") {
        const sent = data.t === "ev.payment_acknowledged";
        setLive((now) => ({
          ...now,
          payments: [
            ...now.payments,
            { t: seconds(), channel: data.channel_id, asset: data.asset, total: data.total, sent },
          ],
        }));
      }
      for (const [id, s] of live.sessions) {
        if (s.view.channel_id === data.channel_id && s.view.phase !== "stopped") reread(id);
      }
    } else if (event === "device" && data.device_id) {
      if (!live.devices.some((d) => d.device_id === data.device_id)) {
        readDevice(data.device_id); // one that joined since: its services too
        return;
      }
      setLive((now) => ({
        ...now,
        devices: now.devices.map((d) =>
          d.device_id === data.device_id ? { ...d, online: data.online, state: data.state } : d,
        ),
      }));
    }
  });

  if (!found.data || live === null) {
    return (
      <Heading>
        {found.error ? null : <Loading what="Reading the sessions and devices" />}
        <ErrorBanner error={found.error} retry={found.reload} />
      </Heading>
    );
  }
  const { info, assets, resales } = found.data;
  return (
    <Heading>
      <Sessions live={live} assets={assets} />
      <Payments payments={live.payments} info={info} assets={assets} />
      <Devices devices={live.devices} />
      <ValueChain resales={resales} assets={assets} />
      <Buy assets={assets} />
    </Heading>
  );
}

function Heading({ children }) {
  return (
    <>
      <h1 tabIndex={-1}>Live dashboard</h1>
      {children}
    </>
  );
}

function Sessions({ live, assets }) {
  const all = [...live.sessions.values()].sort(
    (a, b) => (a.view.phase === "stopped") - (b.view.phase === "stopped") || b.view.started_ms - a.view.started_ms,
  );
  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Sessions</h2>
      {all.length === 0 ? <p class="empty">No sessions yet: buy below, or sell an offer.</p> : null}
      <div class="cards">
        {all.slice(0, SHOWN_SESSIONS).map((s) => (
          <SessionCard key={s.view.session_id} session={s} assets={assets} />
        ))}
      </div>
    </section>
  );
}

function SessionCard({ session, assets }) {
  const { view, points } = session;
  const asset = assetAt(assets, view.asset);
  const flow = view.reversed ? view.backward : view.forward;
  // Exposure: what one side has given and the other not yet matched, against the most the
  // credit window lets it reach (window × price).
  const gap = BigInt(flow.value) - BigInt(flow.paid);
  const exposure = (gap < 0n ? -gap : gap).toString();
  const limit = (BigInt(view.window) * BigInt(view.price)).toString();
  const data = [points.map((p) => p.t), points.map((p) => p.units), points.map((p) => plotted(p.paid, asset.decimals))];
  const running = view.phase !== "stopped";
  return (
    <article class="card session" data-session={view.session_id} data-phase={view.phase} aria-label={`Session ${view.session_id.slice(0, 10)}`}>
      <h3>
        {view.role === "buyer" ? "Bought" : "Sold"} · {view.phase}
      </h3>
      <dl class="facts">
        <dt>Session</dt>
        <dd>
          <code>{view.session_id.slice(0, 18)}…</code>
        </dd>
        <dt>Units</dt>
        <dd data-testid="units">
          {flow.units} {view.unit}
        </dd>
        <dt>Paid</dt>
        <dd>
          <AmountIn value={flow.paid} asset={asset} />
        </dd>
        <dt>Price</dt>
        <dd>
          <AmountIn value={view.price} asset={asset} /> per {view.unit}
        </dd>
        <dt>Exposure</dt>
        <dd>
          <AmountIn value={exposure} asset={asset} /> of <AmountIn value={limit} asset={asset} /> (window{" "}
          {view.window} {view.unit})
        </dd>
        {running ? null : (
          <>
            <dt>Stopped</dt>
            <dd>{view.stop_reason}</dd>
          </>
        )}
      </dl>
      <LiveChart
        title="Units and tokens over time"
        series={[
          { label: `units (${view.unit})`, scale: "units" },
          { label: `${asset.symbol} paid`, scale: "tokens" },
        ]}
        data={data}
        summary={`${flow.units} ${view.unit}, ${points.length} readings`}
      />
    </article>
  );
}

function Payments({ payments, info, assets }) {
  // One chart per token: totals in different tokens neither add up nor share a scale.
  // Before any payment, the deployment token's, empty.
  const byAsset = new Map();
  for (const p of payments) {
    const key = p.asset.toLowerCase();
    byAsset.set(key, [...(byAsset.get(key) ?? []), p]);
  }
  const shown = byAsset.size > 0 ? [...byAsset] : [[info.contracts.token.toLowerCase(), []]];
  return (
    <section aria-labelledby="payments-heading">
      <h2 id="payments-heading">Payments</h2>
      <p>Tokens moved on this node's channels, sent and received, since this page opened.</p>
      {shown.map(([address, list]) => (
        <AssetPayments key={address} payments={list} asset={assetAt(assets, address)} />
      ))}
    </section>
  );
}

function AssetPayments({ payments, asset }) {
  // Each channel's total is cumulative: the chart adds them up across channels.
  const latest = new Map();
  const data = [[], []];
  for (const p of payments) {
    latest.set(`${p.channel}:${p.sent}`, p.total);
    let sum = 0n;
    for (const total of latest.values()) sum += BigInt(total);
    data[0].push(p.t);
    data[1].push(plotted(sum.toString(), asset.decimals));
  }
  return (
    <div data-testid="payments-chart" data-asset={asset.address}>
      <LiveChart
        title={`Channel payments in ${asset.symbol}`}
        series={[{ label: `${asset.symbol} moved`, scale: "tokens" }]}
        data={data}
        summary={`${payments.length} payments`}
      />
    </div>
  );
}

function Devices({ devices }) {
  const columns = [
    { key: "name", label: "Device" },
    { key: "online", label: "Online", render: (d) => (d.online ? "online" : "offline") },
    { key: "state", label: "State", render: (d) => <DeviceState device={d} /> },
    { key: "services", label: "Services", render: (d) => d.services.map((s) => `${s.name} (${s.unit})`).join(", ") },
  ];
  return (
    <section aria-labelledby="devices-heading">
      <h2 id="devices-heading">Devices</h2>
      <div aria-live="polite">
        <Table caption="Devices on this node's bus" columns={columns} rows={devices} rowKey={(d) => d.device_id} empty="No device has joined this node's bus." />
      </div>
    </section>
  );
}

function DeviceState({ device }) {
  const lamp = device.services.some((s) => s.name === "light");
  if (!lamp) return <span data-state={device.state}>{device.state}</span>;
  const lit = device.online && device.state === "on";
  return (
    <span class={lit ? "lamp lit" : "lamp"} data-state={lit ? "lit" : "off"} data-testid="lamp-state">
      <span class="bulb" aria-hidden="true" />
      {lit ? "Lit" : "Off"}
    </span>
  );
}

function ValueChain({ resales, assets }) {
  return (
    <section aria-labelledby="chain-heading">
      <h2 id="chain-heading">Value chain</h2>
      {resales.length === 0 ? <p class="empty">This node resells nothing: no chain of purchases and sales.</p> : null}
      {resales.map((r) => (
        <ChainOf key={r.offer.offer_id} resale={r} assets={assets} />
      ))}
    </section>
  );
}

function ChainOf({ resale, assets }) {
  const asset = assetAt(assets, resale.offer.asset);
  const sum = (key) => resale.reconciliations.reduce((total, r) => total + BigInt(r[key]), 0n).toString();
  const units = (key) => resale.reconciliations.reduce((total, r) => total + r[key], 0);
  const unit = resale.offer.unit;
  return (
    <ol class="chain" aria-label={`Resale of offer ${resale.source_offer_id.slice(0, 10)}`}>
      <li class="card">
        <h3>Source</h3>
        <p>
          <code>{resale.source_seller.slice(0, 12)}…</code>
        </p>
        <p>
          {units("units_bought")} {unit} bought for <AmountIn value={sum("paid_upstream")} asset={asset} />
        </p>
      </li>
      <li class="card">
        <h3>This node</h3>
        <p>
          Commission <AmountIn value={resale.commission} asset={asset} /> per {unit}
        </p>
        <p>
          Margin{" "}
          <AmountIn value={(BigInt(sum("received_downstream")) - BigInt(sum("paid_upstream"))).toString()} asset={asset} />
        </p>
      </li>
      <li class="card">
        <h3>Buyers</h3>
        <p>
          {units("units_sold")} {unit} sold for <AmountIn value={sum("received_downstream")} asset={asset} />
        </p>
        <p>
          {resale.reconciliations.length} {resale.reconciliations.length === 1 ? "sale" : "sales"}
        </p>
      </li>
    </ol>
  );
}

function Buy({ assets }) {
  const [shop, setShop] = useState(null); // {url, storefront}
  const read = async ({ seller }) => {
    const url = (seller ?? "").trim();
    if (!/^https?:\/\/\S+$/.test(url)) throw new ApiError(422, "invalid_input", "a URL such as http://127.0.0.1:8402", "seller");
    const storefront = await api("/v1/storefront", { method: "POST", body: { seller: url } });
    if (!storefront.same_chain) throw new ApiError(409, "other_chain", "that node is on another chain", "seller");
    setShop({ url, storefront });
    const n = storefront.offers.length;
    return `${n} offer${n === 1 ? "" : "s"} at ${url}`;
  };
  const buy = async ({ offer_id, units, deposit }) => {
    const offer = shop.storefront.offers.find((o) => o.offer_id === offer_id);
    if (!offer) throw new ApiError(422, "invalid_input", "pick an offer", "offer_id");
    const count = /^\s*\d+\s*$/.test(units ?? "") ? Number.parseInt(units, 10) : 0;
    if (count < 1 || count > 1_000_000) throw new ApiError(422, "invalid_input", "a whole number from 1", "units");
    let raw;
    try {
      raw = parseAmount(deposit ?? "", assetAt(assets, offer.asset).decimals);
    } catch (error) {
      throw new ApiError(422, "invalid_input", error.message, "deposit");
    }
    const budget = (BigInt(offer.price) * BigInt(count)).toString();
    const started = await api("/v1/sessions", {
      method: "POST",
      body: { offer, endpoint: shop.storefront.peer_endpoint, deposit: raw, budget, target_units: count },
    });
    return `Session ${started.session_id.slice(0, 10)}… started: ${count} ${offer.unit}.`;
  };
  const options = (shop?.storefront.offers ?? []).map((o) => {
    const { decimals, symbol } = assetAt(assets, o.asset);
    return { value: o.offer_id, label: `${o.kind}: ${formatAmount(o.price, decimals)} ${symbol} per ${o.unit} (offer ${o.offer_id.slice(0, 10)}…)` };
  });
  return (
    <section aria-labelledby="buy-heading">
      <h2 id="buy-heading">Buy time from a device</h2>
      <Form action={read} submit="Read offers" label="Seller's storefront">
        <Field label="Seller node URL" name="seller" required autocomplete="url" spellcheck={false} placeholder="http://127.0.0.1:8402" />
      </Form>
      {shop ? (
        <Form action={buy} submit="Buy" label="Buy">
          <Select label="Offer" name="offer_id" options={options} />
          <Field label="Units (seconds of light for a lamp)" name="units" inputMode="numeric" required defaultValue="10" />
          <Field label="Deposit if a channel must be opened (in the token it is priced in)" name="deposit" inputMode="decimal" defaultValue="1" />
        </Form>
      ) : null}
    </section>
  );
}
