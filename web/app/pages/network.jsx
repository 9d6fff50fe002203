// Who is around this node: the registry's listings with their providers' reputation
// (`/v1/registry/services`), the node's peers (`/v1/peers`), and what its watcher did on
// chain for its channels (`/v1/watcher/disputes`).
import { api, decimalsOf, nodeInfo } from "../api.js";
import { Amount, ErrorBanner, Loading, Table, useReady, useResource } from "../ui.jsx";
import { AddressLink, BlockLink, ChannelLink, TxLink, tokenDecimals } from "../explorer_kit.jsx";

function Shell({ title, found, what, children }) {
  return (
    <>
      <h1 tabIndex={-1}>{title}</h1>
      {found.loading ? <Loading what={what} /> : null}
      <ErrorBanner error={found.error} retry={found.reload} />
      <div aria-live="polite">{found.updating ? <p class="updating">Updating…</p> : null}</div>
      {found.data ? children(found.data) : null}
    </>
  );
}

async function loadListings() {
  const [listed, info] = await Promise.all([api("/v1/registry/services"), nodeInfo()]);
  const assets = [...new Set(listed.services.map((s) => s.asset))];
  // Prices are shown only once every asset's decimals are known: never in a wrong unit.
  const decimals = Object.fromEntries(
    await Promise.all(assets.map(async (a) => [a.toLowerCase(), await tokenDecimals(info, a)])),
  );
  return { listed, info, decimals };
}

function assetName(info, asset) {
  if (/^0x0{40}$/i.test(asset)) return "ETH";
  if (asset.toLowerCase() === info.contracts.token.toLowerCase()) return info.contracts.token_symbol;
  return null;
}

export function Registry() {
  const found = useResource(loadListings);
  useReady(found.data !== undefined);
  return (
    <Shell title="Registry" found={found} what="Reading the registry">
      {({ listed, info, decimals }) => {
        const columns = [
          { key: "id", label: "Listing", numeric: true, render: (s) => String(s.listing_id) },
          { key: "provider", label: "Provider", render: (s) => <AddressLink address={s.provider} /> },
          { key: "kind", label: "Kind" },
          {
            key: "price",
            label: "Price",
            numeric: true,
            render: (s) => {
              const known = decimals[s.asset.toLowerCase()];
              const name = assetName(info, s.asset);
              return known === null ? (
                <span>
                  {s.price} (smallest unit of <AddressLink address={s.asset} />)
                </span>
              ) : (
                <>
                  <Amount value={s.price} decimals={known ?? decimalsOf(info, s.asset)} symbol={name ?? ""} />
                  {name ? null : <> of <AddressLink address={s.asset} /></>} / {s.unit}
                </>
              );
            },
          },
          {
            key: "score",
            label: "Reputation",
            render: (s) =>
              s.score.average === null ? "no ratings yet" : `${s.score.average} of 5 (${s.score.ratings} ratings)`,
          },
          { key: "endpoint", label: "Storefront", render: (s) => <span class="mono">{s.endpoint}</span> },
          { key: "where", label: "Place", render: (s) => s.location || "none" },
          { key: "watcher", label: "Watcher", render: (s) => (s.watcher ? <AddressLink address={s.watcher} /> : "none") },
        ];
        return (
          <>
            <p>Indexed up to block <BlockLink number={listed.cursor} />.</p>
            <Table
              caption="Services listed"
              columns={columns}
              rows={listed.services}
              rowKey={(s) => s.listing_id}
              empty="No services are listed in the registry."
            />
          </>
        );
      }}
    </Shell>
  );
}

export function Peers() {
  const found = useResource(() => api("/v1/peers"));
  useReady(found.data !== undefined);
  const columns = [
    { key: "address", label: "Peer", render: (p) => <AddressLink address={p.address} full /> },
    { key: "endpoint", label: "Endpoint", render: (p) => <span class="mono">{p.endpoint ?? "not known"}</span> },
    {
      key: "connected",
      label: "Connected",
      render: (p) => <span class={p.connected ? "good" : "bad"}>{p.connected ? "yes" : "no"}</span>,
    },
    { key: "channels", label: "Open channels", numeric: true },
  ];
  return (
    <Shell title="Peers" found={found} what="Reading the node's peers">
      {(listed) => (
        <Table
          caption="This node's peers"
          columns={columns}
          rows={listed.peers}
          rowKey={(p) => p.address}
          busy={found.updating}
          empty="This node has no peers yet."
        />
      )}
    </Shell>
  );
}

export function Disputes() {
  const found = useResource(() => api("/v1/watcher/disputes"));
  useReady(found.data !== undefined);
  const columns = [
    { key: "id", label: "Dispute", numeric: true },
    { key: "kind", label: "Kind" },
    { key: "status", label: "Status" },
    { key: "channel", label: "Channel", render: (d) => <ChannelLink id={d.channel_id} /> },
    { key: "tx", label: "Transaction", render: (d) => (d.tx_hash ? <TxLink hash={d.tx_hash} /> : "not sent") },
    { key: "block", label: "Block", render: (d) => (d.block === null ? "not mined" : <BlockLink number={d.block} />) },
    {
      key: "proved",
      label: "Total proved (smallest unit)",
      numeric: true,
      render: (d) => (d.transferred === null ? "none" : <data value={d.transferred}>{d.transferred}</data>),
    },
    { key: "reason", label: "Why it failed", render: (d) => d.reason ?? "" },
  ];
  return (
    <Shell title="Disputes" found={found} what="Asking the watcher">
      {(seen) =>
        seen.watcher === null ? (
          <p data-testid="watcher">This node has no watcher (m2mpay node --watcher URL gives it one).</p>
        ) : (
          <>
            <p data-testid="watcher">
              Watcher <span class="mono">{seen.watcher}</span>:{" "}
              {seen.reachable ? "reachable" : <span class="bad">not reachable ({seen.problem})</span>}
            </p>
            {seen.reachable ? (
              <Table
                caption="Challenges and settlements the watcher sent for this node's channels"
                columns={columns}
                rows={seen.disputes}
                rowKey={(d) => d.id}
                busy={found.updating}
                empty="The watcher has not had to act for this node."
              />
            ) : null}
          </>
        )
      }
    </Shell>
  );
}
