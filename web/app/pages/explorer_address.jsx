// The explorer's pages of an address (its balances, what contract it is, its token
// transfers, its reputation in the registry) and of a channel (its history on chain).
import { api, nodeInfo } from "../api.js";
import { href } from "../router.js";
import { Amount, ErrorBanner, Loading, Table, useReady, useResource } from "../ui.jsx";
import {
  AddressLink,
  Args,
  BlockLink,
  ChainTime,
  TxLink,
  explorerPath,
  tokenDecimals,
} from "../explorer_kit.jsx";

/** An amount of `token` with its decimals when known; else the smallest unit, said so. */
function TokenAmount({ value, decimals, symbol }) {
  if (decimals === null) {
    return (
      <span>
        <data class="amount" value={value}>
          {value}
        </data>{" "}
        (smallest unit{symbol ? ` of ${symbol}` : ""})
      </span>
    );
  }
  return <Amount value={value} decimals={decimals} symbol={symbol} />;
}

async function loadAddress(address) {
  const [detail, info, scores] = await Promise.all([
    api(`/v1/explorer/addresses/${address}`),
    nodeInfo(),
    api(`/v1/registry/scores/${address}`),
  ]);
  const tokens = new Set([...detail.tokens.map((t) => t.token), ...detail.transfers.map((t) => t.token)]);
  // Every figure waits for every token's decimals: none is shown in a unit it is not in.
  const decimals = Object.fromEntries(
    await Promise.all([...tokens].map(async (t) => [t.toLowerCase(), await tokenDecimals(info, t)])),
  );
  const symbols = Object.fromEntries(detail.tokens.map((t) => [t.token.toLowerCase(), t.symbol]));
  if (info.contracts.token) symbols[info.contracts.token.toLowerCase()] ??= info.contracts.token_symbol;
  return { detail, decimals, symbols, scores };
}

export function AddressPage({ params }) {
  const address = params.address;
  const valid = /^0x[0-9a-fA-F]{40}$/.test(address);
  const found = useResource(() => loadAddress(address), [address]);
  useReady(found.data !== undefined);
  return (
    <>
      <h1 tabIndex={-1}>Address</h1>
      {!valid ? <p class="field-error">Not an address: 0x and 40 hex digits.</p> : null}
      {found.loading ? <Loading what="Reading the address" /> : null}
      <ErrorBanner error={found.error} retry={found.reload} />
      {found.data ? <AddressDetail {...found.data} updating={found.updating} /> : null}
    </>
  );
}

function AddressDetail({ detail, decimals, symbols, scores, updating }) {
  const symbolOf = (token) => symbols[token.toLowerCase()] ?? null;
  const transferColumns = [
    { key: "block", label: "Block", render: (t) => <BlockLink number={t.block} /> },
    { key: "tx", label: "Transaction", render: (t) => <TxLink hash={t.tx_hash} /> },
    {
      key: "direction",
      label: "Direction",
      render: (t) => (t.receiver.toLowerCase() === detail.address.toLowerCase() ? "in" : "out"),
    },
    { key: "from", label: "From", render: (t) => <AddressLink address={t.sender} /> },
    { key: "to", label: "To", render: (t) => <AddressLink address={t.receiver} /> },
    {
      key: "token",
      label: "Token",
      render: (t) =>
        symbolOf(t.token) ? (
          <a href={href(explorerPath.address(t.token))}>{symbolOf(t.token)}</a>
        ) : (
          <AddressLink address={t.token} />
        ),
    },
    {
      key: "value",
      label: "Amount",
      numeric: true,
      render: (t) => <TokenAmount value={t.value} decimals={decimals[t.token.toLowerCase()]} />,
    },
  ];
  const holdingColumns = [
    { key: "token", label: "Token", render: (t) => <AddressLink address={t.token} /> },
    { key: "symbol", label: "Symbol" },
    {
      key: "balance",
      label: "Balance",
      numeric: true,
      render: (t) => <TokenAmount value={t.balance} decimals={decimals[t.token.toLowerCase()]} />,
    },
  ];
  const scoreColumns = [
    { key: "asset", label: "Asset", render: (s) => <AddressLink address={s.asset} /> },
    { key: "average", label: "Average (1 to 5)", numeric: true, render: (s) => s.average ?? "none yet" },
    { key: "ratings", label: "Ratings", numeric: true },
  ];
  return (
    <>
      <dl class="facts">
        <dt>Address</dt>
        <dd data-testid="address">{detail.address}</dd>
        <dt>What it is</dt>
        <dd data-testid="contract">
          {detail.contract === null ? "an account" : detail.contract === "unknown" ? "a contract this explorer does not know" : `the ${detail.contract} contract`}
        </dd>
        <dt>ETH</dt>
        <dd>
          <Amount value={detail.balance} decimals={18} symbol="ETH" />
        </dd>
      </dl>
      <div aria-live="polite">{updating ? <p class="updating">Updating…</p> : null}</div>
      <Table
        caption="Token balances"
        columns={holdingColumns}
        rows={detail.tokens}
        rowKey={(t) => t.token}
        busy={updating}
        empty="No balance in the tokens this explorer knows."
      />
      <Table
        caption="Token transfers (newest first)"
        columns={transferColumns}
        rows={detail.transfers}
        rowKey={(t) => `${t.tx_hash}:${t.log_index}`}
        busy={updating}
        empty="No token transfers."
      />
      <Table
        caption="Reputation in the registry"
        columns={scoreColumns}
        rows={scores.scores}
        rowKey={(s) => s.asset}
        busy={updating}
        empty="No ratings in the registry."
      />
    </>
  );
}

const STEP_NAMES = {
  ChannelOpened: "opened",
  ChannelDeposited: "deposit",
  ChannelClosing: "close",
  ChannelClosed: "close",
  ChannelChallenged: "challenge",
  ChannelSettled: "settled",
};

export function ChannelPage({ params }) {
  const id = params.id;
  const found = useResource(() => api(`/v1/explorer/channels/${encodeURIComponent(id)}`), [id]);
  useReady(found.data !== undefined);
  const columns = [
    {
      key: "event",
      label: "Step",
      render: (s) => (
        <>
          <strong>{STEP_NAMES[s.event] ?? s.event ?? "unknown"}</strong>
          <span class="muted"> {s.event}</span>
        </>
      ),
    },
    { key: "block", label: "Block", render: (s) => <BlockLink number={s.block} /> },
    { key: "time", label: "Time (UTC)", render: (s) => <ChainTime seconds={s.timestamp} /> },
    { key: "tx", label: "Transaction", render: (s) => <TxLink hash={s.tx_hash} /> },
    { key: "args", label: "Arguments", render: (s) => <Args args={s.args} /> },
  ];
  return (
    <>
      <h1 tabIndex={-1}>Channel</h1>
      <p>
        <code>{id}</code>
      </p>
      {found.loading ? <Loading what="Reading the channel's history" /> : null}
      <ErrorBanner error={found.error} retry={found.reload} />
      {found.data ? (
        <Table
          caption="Its history on chain"
          columns={columns}
          rows={found.data.events}
          rowKey={(s) => `${s.tx_hash}:${s.log_index}`}
          busy={found.updating}
          empty="The hub holds no event of it."
        />
      ) : null}
    </>
  );
}
