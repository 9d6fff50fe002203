// One channel: what it holds, paying, topping up and closing it, and its history: the
// hub's events of it on chain (`/v1/explorer/channels/{id}`) and the payments made and
// received while the page is open, live from the node's event stream.
import { useState } from "preact/hooks";
import { ApiError, api } from "../api.js";
import { assetAt, loadAssets, readAmount } from "../assets.js";
import { TxLink } from "../explorer_kit.jsx";
import { href } from "../router.js";
import { useEvents, useReloadOn } from "../sse.js";
import { Amount, ErrorBanner, Field, Form, Loading, Table, useReady, useResource } from "../ui.jsx";

const MOVING = new Set(["open"]); // the phases in which a channel takes payments and deposits

async function loadHistory(id) {
  try {
    return await api(`/v1/explorer/channels/${id}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { channel_id: id, events: [] };
    throw error;
  }
}

export function Channel({ params }) {
  const id = params.id.toLowerCase();
  const found = useResource(async () => {
    if (!/^0x[0-9a-f]{64}$/.test(id)) throw new ApiError(422, "invalid_input", "a channel id is 0x and 64 hexadecimal digits", "channel_id");
    const [channel, assets] = await Promise.all([api(`/v1/channels/${id}`), loadAssets()]);
    return { channel, assets };
  }, [id]);
  const history = useResource(() => loadHistory(id), [id]);
  const [payments, setPayments] = useState([]);
  // What a close did: said here, as its form goes once the channel no longer moves.
  const [closing, setClosing] = useState(null);
  useReady(found.data !== undefined && history.data !== undefined);
  const ours = ({ event, data }) => event === "channel" && data.channel_id === id;
  useReloadOn(ours, found.reload);
  useReloadOn((e) => ours(e) && !e.data.t.startsWith("ev.payment"), history.reload);
  useEvents((e) => {
    if (!ours(e)) return;
    const { t, amount, total, seq } = e.data;
    if (t === "ev.payment_received") {
      setPayments((list) => [{ direction: "received", amount, total, seq, acknowledged: true }, ...list]);
    } else if (t === "ev.payment_acknowledged") {
      setPayments((list) => list.map((p) => (p.direction === "sent" && p.seq <= seq ? { ...p, acknowledged: true } : p)));
    }
  });

  const heading = <h1 tabIndex={-1}>Channel</h1>;
  if (!found.data) {
    return (
      <>
        {heading}
        {found.loading && !found.error ? <Loading what="Reading the channel" /> : null}
        <ErrorBanner error={found.error} retry={found.reload} />
        <p>
          <a href={href("/channels")}>All channels</a>
        </p>
      </>
    );
  }
  const { channel: c, assets } = found.data;
  const { decimals, symbol } = assetAt(assets, c.asset);
  const amount = (value) => <Amount value={value} decimals={decimals} symbol={symbol} />;
  const moving = MOVING.has(c.phase);

  const pay = async ({ amount: text }) => {
    const made = await api(`/v1/channels/${id}/payments`, { method: "POST", body: { amount: readAmount(text, decimals, "amount") } });
    setPayments((list) => [{ direction: "sent", amount: made.amount, total: made.sent_total, seq: made.seq, acknowledged: made.acknowledged }, ...list]);
    await found.reload();
    return `Paid; ${made.acknowledged ? "the peer holds it" : "sent, not yet acknowledged"}.`;
  };
  const topUp = async ({ top_up: text }) => {
    const raw = readAmount(text, decimals, "top_up");
    try {
      await api(`/v1/channels/${id}/deposits`, { method: "POST", body: { amount: raw } });
    } catch (error) {
      // The node names its body's field; on this page that field is the top-up's.
      if (error instanceof ApiError && error.field === "amount") throw new ApiError(error.status, error.code, error.message, "top_up");
      throw error;
    }
    await Promise.all([found.reload(), history.reload()]);
    return "Deposited on chain.";
  };
  const close = async () => {
    const closed = await api(`/v1/channels/${id}/close`, { method: "POST" });
    setClosing(`The channel is ${closed.phase}.`);
    await Promise.all([found.reload(), history.reload()]);
    return null;
  };
  const paymentColumns = [
    { key: "direction", label: "Direction" },
    { key: "seq", label: "Sequence", numeric: true },
    { key: "amount", label: "Amount", numeric: true, render: (p) => amount(p.amount) },
    { key: "total", label: "Total so far", numeric: true, render: (p) => amount(p.total) },
    { key: "acknowledged", label: "Held by the payee", render: (p) => (p.acknowledged ? "yes" : "not yet") },
  ];
  const eventColumns = [
    { key: "event", label: "Event", render: (e) => e.event ?? "unknown" },
    { key: "block", label: "Block", numeric: true },
    { key: "time", label: "Time (UTC)", render: (e) => new Date(e.timestamp * 1000).toISOString().replace("T", " ").slice(0, 19) },
    { key: "tx_hash", label: "Transaction", render: (e) => <TxLink hash={e.tx_hash} full /> },
  ];
  return (
    <>
      {heading}
      <p>
        <a href={href("/channels")}>All channels</a>
      </p>
      <ErrorBanner error={found.error} retry={found.reload} />
      <div aria-live="polite">{found.updating ? <p class="updating">Updating the channel…</p> : null}</div>
      <dl class="facts" aria-busy={found.updating ? "true" : undefined}>
        <dt>Id</dt>
        <dd data-testid="channel-id">{c.channel_id}</dd>
        <dt>Peer</dt>
        <dd>{c.peer}</dd>
        <dt>State</dt>
        <dd data-testid="channel-phase">{c.phase}</dd>
        <dt>Asset</dt>
        <dd>
          {symbol} ({c.asset})
        </dd>
        <dt>Deposits (mine / peer's)</dt>
        <dd data-testid="channel-deposits">
          {amount(c.deposit_mine)} / {amount(c.deposit_peer)}
        </dd>
        <dt>Balances (mine / peer's)</dt>
        <dd data-testid="channel-balances">
          {amount(c.balance_mine)} / {amount(c.balance_peer)}
        </dd>
        <dt>Paid / received in all</dt>
        <dd data-testid="channel-totals">
          {amount(c.sent_total)} in {c.payments_sent} / {amount(c.received_total)} in {c.payments_received}
        </dd>
        <dt>In flight</dt>
        <dd>{c.in_flight}</dd>
        <dt>Challenge period</dt>
        <dd>{c.challenge_period} s</dd>
        {c.final_balance_mine !== null ? (
          <>
            <dt>Paid out to this node</dt>
            <dd>{amount(c.final_balance_mine)}</dd>
          </>
        ) : null}
      </dl>
      <p class="done" role="status">
        {closing}
      </p>
      {moving ? (
        <>
          <section aria-labelledby="pay-heading">
            <h2 id="pay-heading">Pay the peer</h2>
            <Form action={pay} submit="Pay" label="Pay the peer">
              <Field label="Amount to pay" name="amount" required inputMode="decimal" autocomplete="off" hint={`In ${symbol}, e.g. 1.5`} />
            </Form>
          </section>
          <section aria-labelledby="top-up-heading">
            <h2 id="top-up-heading">Top up</h2>
            <Form action={topUp} submit="Top up" label="Top up">
              <Field label="Amount to deposit" name="top_up" required inputMode="decimal" autocomplete="off" hint={`In ${symbol}, added on chain`} />
            </Form>
          </section>
          <section aria-labelledby="close-heading">
            <h2 id="close-heading">Close</h2>
            <p>Settles on chain: each side gets its balance; the peer's signature makes it at once, else after the challenge period.</p>
            <Form action={close} submit="Close the channel" label="Close the channel" />
          </section>
        </>
      ) : null}
      <section aria-labelledby="payments-heading">
        <h2 id="payments-heading">Payments</h2>
        <div aria-live="polite">
          <Table
            caption="Payments made and received since this page opened, newest first"
            columns={paymentColumns}
            rows={payments}
            rowKey={(p) => `${p.direction}-${p.seq}`}
            empty="No payment since this page opened."
          />
        </div>
      </section>
      <section aria-labelledby="history-heading">
        <h2 id="history-heading">On chain</h2>
        <ErrorBanner error={history.error} retry={history.reload} />
        {history.data ? (
          <Table
            caption="The hub's events of this channel, in chain order"
            columns={eventColumns}
            rows={history.data.events}
            rowKey={(e) => `${e.tx_hash}-${e.log_index}`}
            busy={history.updating}
            empty="Nothing on chain yet."
          />
        ) : (
          <Loading what="Reading the chain" />
        )}
      </section>
    </>
  );
}
