// Channels: every channel of the node (state, peer, deposits, balances), kept current by
// the node's channel events, and opening one (`POST /v1/channels`) to a peer by its
// address and, unless the node knows it already, its wire endpoint.
import { ApiError, api } from "../api.js";
import { assetAt, assetOptions, loadAssets, readAmount } from "../assets.js";
import { href, navigate } from "../router.js";
import { useReloadOn } from "../sse.js";
import { Amount, ErrorBanner, Field, Form, Loading, Select, Table, useReady, useResource } from "../ui.jsx";

async function load() {
  const [listed, assets] = await Promise.all([api("/v1/channels"), loadAssets()]);
  return { channels: listed.channels, assets };
}

export const shortId = (id) => `${id.slice(0, 10)}…${id.slice(-4)}`;

export function Channels() {
  const found = useResource(load);
  useReady(found.data !== undefined);
  useReloadOn(({ event }) => event === "channel", found.reload);
  const heading = <h1 tabIndex={-1}>Channels</h1>;
  if (!found.data) {
    return (
      <>
        {heading}
        {found.loading && !found.error ? <Loading what="Reading the channels" /> : null}
        <ErrorBanner error={found.error} retry={found.reload} />
      </>
    );
  }
  const { channels, assets } = found.data;
  const pair = (c, mine, peer) => {
    const { decimals, symbol } = assetAt(assets, c.asset);
    return (
      <>
        <Amount value={c[mine]} decimals={decimals} symbol={symbol} /> / <Amount value={c[peer]} decimals={decimals} />
      </>
    );
  };
  const columns = [
    { key: "channel_id", label: "Channel", render: (c) => <a href={href(`/channels/${c.channel_id}`)}>{shortId(c.channel_id)}</a> },
    { key: "peer", label: "Peer", render: (c) => <code>{c.peer}</code> },
    { key: "phase", label: "State" },
    { key: "deposits", label: "Deposits (mine / peer's)", numeric: true, render: (c) => pair(c, "deposit_mine", "deposit_peer") },
    { key: "balances", label: "Balances (mine / peer's)", numeric: true, render: (c) => pair(c, "balance_mine", "balance_peer") },
  ];
  const open = async ({ peer, endpoint, asset, deposit }) => {
    const address = (peer ?? "").trim();
    if (!/^0x[0-9a-fA-F]{40}$/.test(address)) {
      throw new ApiError(422, "invalid_input", "an address: 0x and 40 hexadecimal digits", "peer");
    }
    const reach = (endpoint ?? "").trim();
    if (reach && !/^wss?:\/\/\S+$/.test(reach)) {
      throw new ApiError(422, "invalid_input", "a wire endpoint such as ws://host:port", "endpoint");
    }
    const raw = readAmount(deposit, assetAt(assets, asset).decimals, "deposit");
    const body = { peer: address, asset, deposit: raw, ...(reach ? { endpoint: reach } : {}) };
    const opened = await api("/v1/channels", { method: "POST", body });
    navigate(`/channels/${opened.channel_id}`);
    return `Opened ${shortId(opened.channel_id)}`;
  };
  return (
    <>
      {heading}
      <ErrorBanner error={found.error} retry={found.reload} />
      <div aria-live="polite">{found.updating ? <p class="updating">Updating the channels…</p> : null}</div>
      <Table
        caption="This node's channels"
        columns={columns}
        rows={channels}
        rowKey={(c) => c.channel_id}
        busy={found.updating}
        empty="No channels yet: open one below."
      />
      <section aria-labelledby="open-heading">
        <h2 id="open-heading">Open a channel</h2>
        <p>The deposit is locked in the channel on chain; the peer must be a node that answers on its wire endpoint.</p>
        <Form action={open} submit="Open the channel" label="Open a channel">
          <Field label="Peer (address)" name="peer" required autocomplete="off" spellcheck={false} />
          <Field
            label="Peer's endpoint"
            name="endpoint"
            autocomplete="off"
            spellcheck={false}
            hint="ws://host:port, where its node listens for peers; empty if this node knows it already"
          />
          <Select label="Asset" name="asset" options={assetOptions(assets).slice(1).concat(assetOptions(assets).slice(0, 1))} />
          <Field label="Deposit" name="deposit" required inputMode="decimal" autocomplete="off" hint="In whole units, e.g. 10" />
        </Form>
      </section>
    </>
  );
}
