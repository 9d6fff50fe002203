// The wallet: balances per asset (`GET /v1/wallet`), the dev faucet
// (`POST /v1/wallet/faucet`), and sending on chain (`POST /v1/wallet/transfers`); the
// balances read again when the node's event stream says a channel moved.
import { ApiError, api, nodeInfo, parseAmount } from "../api.js";
import { useReloadOn } from "../sse.js";
import { Amount, ErrorBanner, Field, Form, Loading, Select, Table, useReady, useResource } from "../ui.jsx";

async function load() {
  const [wallet, info] = await Promise.all([api("/v1/wallet"), nodeInfo()]);
  return { wallet, info };
}

export function Wallet() {
  const found = useResource(load);
  useReady(found.data !== undefined);
  useReloadOn(({ event }) => event === "channel", found.reload);
  if (found.loading) return <Heading>{found.error ? null : <Loading what="Reading the balances" />}<ErrorBanner error={found.error} retry={found.reload} /></Heading>;
  if (!found.data) return <Heading><ErrorBanner error={found.error} retry={found.reload} /></Heading>;
  const { wallet, info } = found.data;
  const columns = [
    { key: "symbol", label: "Asset" },
    {
      key: "on_chain",
      label: "On chain",
      numeric: true,
      render: (b) => <Amount value={b.on_chain} decimals={b.decimals} />,
    },
    {
      key: "in_channels",
      label: "In channels",
      numeric: true,
      render: (b) => <Amount value={b.in_channels} decimals={b.decimals} />,
    },
  ];
  const send = async ({ to, asset, amount }) => {
    let raw;
    try {
      // Each balance says its asset's decimals, a factory token's too.
      const chosen = wallet.balances.find((b) => b.asset === asset);
      raw = parseAmount(amount ?? "", chosen.decimals);
    } catch (error) {
      throw new ApiError(422, "invalid_input", error.message, "amount");
    }
    if (raw === "0") throw new ApiError(422, "invalid_input", "more than nothing", "amount");
    const sent = await api("/v1/wallet/transfers", { method: "POST", body: { to: to.trim(), asset, amount: raw } });
    await found.reload();
    return `Sent in block ${sent.block}: ${sent.tx_hash}`;
  };
  const faucet = async () => {
    await api("/v1/wallet/faucet", { method: "POST", body: {} });
    await found.reload();
    return "The faucet paid this node.";
  };
  return (
    <Heading>
      <p>
        Address <code>{wallet.address}</code>
      </p>
      <ErrorBanner error={found.error} retry={found.reload} />
      <div aria-live="polite">
        {found.updating ? <p class="updating">Updating the balances…</p> : null}
      </div>
      <Table
        caption="Balances"
        columns={columns}
        rows={wallet.balances}
        rowKey={(b) => b.asset}
        busy={found.updating}
      />
      {info.dev_chain ? (
        <section aria-labelledby="faucet-heading">
          <h2 id="faucet-heading">Dev faucet</h2>
          <p>Development chains only: 1,000 {info.contracts.token_symbol} and 1 ETH to this node.</p>
          <Form action={faucet} submit="Use the faucet" label="Dev faucet" />
        </section>
      ) : null}
      <section aria-labelledby="send-heading">
        <h2 id="send-heading">Send</h2>
        <Form action={send} submit="Send" label="Send">
          <Field label="To (address)" name="to" required autocomplete="off" spellcheck={false} pattern="0x[0-9a-fA-F]{40}" />
          <Select
            label="Asset"
            name="asset"
            options={wallet.balances.map((b) => ({ value: b.asset, label: b.symbol }))}
          />
          <Field label="Amount" name="amount" required inputMode="decimal" hint="In whole units, e.g. 1.5" autocomplete="off" />
        </Form>
      </section>
    </Heading>
  );
}

function Heading({ children }) {
  return (
    <>
      <h1 tabIndex={-1}>Wallet</h1>
      {children}
    </>
  );
}
