// Tokens: every token the deployment's factory made (`/v1/tokens`), with this node's
// balance of each, and making one with the node's key (`POST /v1/tokens`).
import { ApiError, api } from "../api.js";
import { readAmount } from "../assets.js";
import { Amount, ErrorBanner, Field, Form, Loading, Table, useReady, useResource } from "../ui.jsx";

async function load() {
  const { tokens } = await api("/v1/tokens");
  // Each balance read with the list: the table shows them all from one pass or not at all.
  const details = await Promise.all(tokens.map((t) => api(`/v1/tokens/${t.address}`)));
  return details;
}

const MAX_DECIMALS = 77; // the factory's: 10**78 does not fit in a uint256

export function Tokens() {
  const found = useResource(load);
  useReady(found.data !== undefined);
  const heading = <h1 tabIndex={-1}>Tokens</h1>;
  const create = async ({ name, symbol, decimals, supply, mintable }) => {
    const places = (decimals ?? "").trim() === "" ? 18 : Number.parseInt(decimals, 10);
    if (!/^\d+$/.test((decimals ?? "").trim() || "18") || places > MAX_DECIMALS) {
      throw new ApiError(422, "invalid_input", `a whole number from 0 to ${MAX_DECIMALS}`, "decimals");
    }
    const body = {
      name: (name ?? "").trim(),
      symbol: (symbol ?? "").trim(),
      decimals: places,
      supply: readAmount(supply, places, "supply", { zero: true }),
      mintable: mintable === "on",
    };
    if (!body.name) throw new ApiError(422, "invalid_input", "a name, e.g. IoT-Light", "name");
    if (!body.symbol) throw new ApiError(422, "invalid_input", "a symbol, e.g. LIGHT", "symbol");
    const made = await api("/v1/tokens", { method: "POST", body });
    await found.reload();
    return `Created ${made.symbol} at ${made.address} in block ${made.block}.`;
  };
  const columns = [
    { key: "symbol", label: "Symbol", render: (d) => d.token.symbol },
    { key: "name", label: "Name", render: (d) => d.token.name },
    { key: "address", label: "Address", render: (d) => <code class="hash">{d.token.address}</code> },
    { key: "decimals", label: "Decimals", numeric: true, render: (d) => d.token.decimals },
    { key: "total_supply", label: "Supply", numeric: true, render: (d) => <Amount value={d.total_supply} decimals={d.token.decimals} /> },
    { key: "balance", label: "This node holds", numeric: true, render: (d) => <Amount value={d.balance} decimals={d.token.decimals} /> },
    { key: "mint", label: "Mintable", render: (d) => (d.token.mint_owner ? "yes" : "no") },
  ];
  return (
    <>
      {heading}
      <ErrorBanner error={found.error} retry={found.reload} />
      {found.loading && !found.error ? <Loading what="Reading the factory's tokens" /> : null}
      <div aria-live="polite">{found.updating ? <p class="updating">Updating the tokens…</p> : null}</div>
      {found.data ? (
        <Table
          caption="Tokens the factory made, oldest first"
          columns={columns}
          rows={found.data}
          rowKey={(d) => d.token.address}
          busy={found.updating}
          empty="The factory has made no token yet."
        />
      ) : null}
      <section aria-labelledby="create-heading">
        <h2 id="create-heading">Create a token</h2>
        <p>An ERC-20 with permit, made by the factory with this node's key (the node pays the gas); it works at once in channels and on the exchange.</p>
        <Form action={create} submit="Create the token" label="Create a token">
          <Field label="Name" name="name" required maxLength={64} autocomplete="off" />
          <Field label="Symbol" name="symbol" required maxLength={32} autocomplete="off" />
          <Field label="Decimals" name="decimals" inputMode="numeric" defaultValue="18" autocomplete="off" hint={`0 to ${MAX_DECIMALS}`} />
          <Field label="Supply" name="supply" required inputMode="decimal" autocomplete="off" hint="In whole tokens, made at once for this node" />
          <Field label="Mintable later by this node" name="mintable" type="checkbox" />
        </Form>
      </section>
    </>
  );
}
