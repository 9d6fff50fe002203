// The exchange: its pools with their prices, a quote read again as the amount is typed,
// a swap whose minimum is the quote shown less the slippage the person accepts (so a pool
// that moved since is refused, with the exchange's reason), and adding and removing
// liquidity. Every refusal is the node's or the contract's, shown at its field.
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, formatAmount, parseAmount } from "../api.js";
import { assetAt, assetOptions, loadAssets, readAmount } from "../assets.js";
import { Amount, ErrorBanner, Field, Form, Loading, Select, Table, useReady, useResource } from "../ui.jsx";

const QUOTE_SETTLE_MS = 250; // one quote when typing pauses, not one a keystroke

async function load() {
  const [{ pools }, assets] = await Promise.all([api("/v1/dex/pools"), loadAssets({ balances: true })]);
  return { pools, assets };
}

/** An error the node named by its body's field, moved to the form's field of that meaning. */
function renamed(error, names) {
  if (error instanceof ApiError && error.field in names) {
    return new ApiError(error.status, error.code, error.message, names[error.field]);
  }
  return error;
}

function slippageBps(text) {
  let bps;
  try {
    bps = BigInt(parseAmount(text ?? "", 2)); // percent with two places = basis points
  } catch (error) {
    throw new ApiError(422, "invalid_input", `a percentage such as 0.5: ${error.message}`, "slippage");
  }
  if (bps > 10_000n) throw new ApiError(422, "invalid_input", "at most 100 %", "slippage");
  return bps;
}

function deadlineSeconds(text) {
  const trimmed = (text ?? "").trim();
  if (!/^\d{1,6}$/.test(trimmed) || Number(trimmed) < 1 || Number(trimmed) > 604_800) {
    throw new ApiError(422, "invalid_input", "whole seconds, from 1 to 604800 (a week)", "deadline_s");
  }
  return Number(trimmed);
}

export function Exchange() {
  const found = useResource(load);
  useReady(found.data !== undefined);
  const heading = <h1 tabIndex={-1}>Exchange</h1>;
  if (!found.data) {
    return (
      <>
        {heading}
        {found.loading && !found.error ? <Loading what="Reading the pools" /> : null}
        <ErrorBanner error={found.error} retry={found.reload} />
      </>
    );
  }
  const { pools, assets } = found.data;
  return (
    <>
      {heading}
      <ErrorBanner error={found.error} retry={found.reload} />
      <div aria-live="polite">{found.updating ? <p class="updating">Updating the pools and balances…</p> : null}</div>
      <Balances assets={assets} busy={found.updating} />
      <Pools pools={pools} busy={found.updating} />
      <Swap assets={assets} reload={found.reload} />
      <AddLiquidity assets={assets} reload={found.reload} />
      <RemoveLiquidity pools={pools} reload={found.reload} />
    </>
  );
}

function Balances({ assets, busy }) {
  const columns = [
    { key: "symbol", label: "Asset" },
    { key: "balance", label: "This node holds", numeric: true, render: (a) => <Amount value={a.balance} decimals={a.decimals} /> },
  ];
  return <Table caption="Balances" columns={columns} rows={assets} rowKey={(a) => a.address} busy={busy} />;
}

function Pools({ pools, busy }) {
  const columns = [
    { key: "pair", label: "Pool", render: (p) => `${p.symbol0} / ${p.symbol1}` },
    {
      key: "reserves",
      label: "Reserves",
      numeric: true,
      render: (p) => (
        <>
          <Amount value={p.reserve0} decimals={p.decimals0} symbol={p.symbol0} /> / <Amount value={p.reserve1} decimals={p.decimals1} symbol={p.symbol1} />
        </>
      ),
    },
    { key: "price", label: "Price", render: (p) => `1 ${p.symbol0} = ${p.price0} ${p.symbol1}; 1 ${p.symbol1} = ${p.price1} ${p.symbol0}` },
    { key: "shares", label: "Shares (this node's / all)", numeric: true, render: (p) => `${formatAmount(p.shares, 0)} / ${formatAmount(p.total_shares, 0)}` },
    { key: "fee", label: "Fee", numeric: true, render: (p) => `${formatAmount(String(p.fee_bps), 2)} %` },
  ];
  return (
    <section aria-labelledby="pools-heading">
      <h2 id="pools-heading">Pools</h2>
      <Table caption="The exchange's pools" columns={columns} rows={pools} rowKey={(p) => p.pool_id} busy={busy} empty="No pool yet: add liquidity to make one." />
    </section>
  );
}

function Swap({ assets, reload }) {
  const options = assetOptions(assets);
  const [sell, setSell] = useState(assets[1].address);
  const [buy, setBuy] = useState(assets[0].address);
  const [amount, setAmount] = useState("");
  const [quote, setQuote] = useState({ key: null, data: null, error: null });
  const [round, setRound] = useState(0); // a new quote after a swap moved the pool
  const sold = assetAt(assets, sell);
  const bought = assetAt(assets, buy);
  const keyOf = (raw) => `${sell}|${buy}|${raw}`;

  const quoteNow = async (raw, signal) => {
    const query = new URLSearchParams({ sell, buy, amount: raw });
    return api(`/v1/dex/quote?${query}`, { signal });
  };
  useEffect(() => {
    let raw;
    try {
      raw = parseAmount(amount, sold.decimals);
    } catch {
      raw = null;
    }
    if (sell === buy || raw === null || raw === "0") {
      setQuote({ key: null, data: null, error: null });
      return undefined;
    }
    const stop = new AbortController();
    const timer = setTimeout(async () => {
      setQuote((q) => ({ ...q, pending: true }));
      try {
        const data = await quoteNow(raw, stop.signal);
        setQuote({ key: keyOf(raw), data, error: null });
      } catch (error) {
        if (error.name !== "AbortError") setQuote({ key: keyOf(raw), data: null, error });
      }
    }, QUOTE_SETTLE_MS);
    return () => {
      clearTimeout(timer);
      stop.abort();
    };
  }, [sell, buy, amount, round]);

  const swap = async (values) => {
    if (sell === buy) throw new ApiError(422, "invalid_input", "sell one asset for another", "buy");
    const raw = readAmount(values.amount_in, sold.decimals, "amount_in");
    const bps = slippageBps(values.slippage);
    const deadline_s = deadlineSeconds(values.deadline_s);
    // The minimum comes from the quote the person saw; none shown yet: asked now.
    const shown = quote.key === keyOf(raw) && quote.data ? quote.data : await quoteNow(raw);
    const minOut = (BigInt(shown.amount_out) * (10_000n - bps)) / 10_000n;
    const body = { sell, buy, amount_in: raw, min_out: minOut.toString(), deadline_s };
    let made;
    try {
      made = await api("/v1/dex/swaps", { method: "POST", body });
    } catch (error) {
      if (error instanceof ApiError && error.code === "slippage") {
        setRound((n) => n + 1); // the quote shown is stale: read it again
        const least = `${formatAmount(minOut.toString(), bought.decimals)} ${bought.symbol}`;
        const said = `The pool moved since the quote: the swap would pay less than the ${least} accepted. Nothing was sent. (${error.message})`;
        throw new ApiError(error.status, error.code, said, "slippage");
      }
      throw renamed(error, { min_out: "slippage", deadline: "deadline_s" });
    }
    await reload();
    setRound((n) => n + 1);
    return `Swapped ${formatAmount(made.amount_in, sold.decimals)} ${sold.symbol} for ${formatAmount(made.amount_out, bought.decimals)} ${bought.symbol} in block ${made.block}.`;
  };
  let said = "Type an amount to see what it pays.";
  if (sell === buy) said = "Pick two different assets.";
  else if (quote.error) said = `No quote: ${quote.error.message}`;
  else if (quote.data) {
    const q = quote.data;
    said = `${formatAmount(q.amount_in, sold.decimals)} ${sold.symbol} pays ${formatAmount(q.amount_out, bought.decimals)} ${bought.symbol} now (fee ${formatAmount(q.fee, sold.decimals)} ${sold.symbol}, price impact ${formatAmount(String(q.price_impact_bps), 2)} %).`;
  }
  return (
    <section aria-labelledby="swap-heading">
      <h2 id="swap-heading">Swap</h2>
      <Form action={swap} submit="Swap" label="Swap">
        <Select label="Sell" name="sell" options={options} value={sell} onChange={(e) => setSell(e.currentTarget.value)} />
        <Select label="Buy" name="buy" options={options} value={buy} onChange={(e) => setBuy(e.currentTarget.value)} />
        <Field label="Amount to sell" name="amount_in" required inputMode="decimal" autocomplete="off" onInput={(e) => setAmount(e.currentTarget.value)} hint={`In ${sold.symbol}, e.g. 1.5`} />
        <p class="quote" role="status" data-testid="quote" aria-busy={quote.pending ? "true" : undefined}>
          {said}
        </p>
        <Field label="Slippage accepted (%)" name="slippage" inputMode="decimal" defaultValue="0.5" autocomplete="off" hint="The swap is refused if it would pay less than the quote shown less this" />
        <Field label="Deadline (seconds)" name="deadline_s" inputMode="numeric" defaultValue="300" autocomplete="off" hint="Refused by the exchange after this many seconds of the chain's clock" />
      </Form>
    </section>
  );
}

function AddLiquidity({ assets, reload }) {
  const options = assetOptions(assets);
  // Chosen in state: a <select> takes no default value of its own in Preact.
  const [first, setFirst] = useState(assets[1].address);
  const [second, setSecond] = useState(assets[0].address);
  const add = async (values) => {
    const a = assetAt(assets, values.asset_a);
    const b = assetAt(assets, values.asset_b);
    if (a.address === b.address) throw new ApiError(422, "invalid_input", "two different assets", "asset_b");
    const body = {
      asset_a: a.address,
      asset_b: b.address,
      amount_a: readAmount(values.amount_a, a.decimals, "amount_a"),
      amount_b: readAmount(values.amount_b, b.decimals, "amount_b"),
      deadline_s: deadlineSeconds(values.deadline_s),
    };
    let made;
    try {
      made = await api("/v1/dex/liquidity", { method: "POST", body });
    } catch (error) {
      throw renamed(error, { deadline: "deadline_s" });
    }
    await reload();
    return `Added ${formatAmount(made.amount_a, a.decimals)} ${a.symbol} and ${formatAmount(made.amount_b, b.decimals)} ${b.symbol} for ${formatAmount(made.shares, 0)} shares.`;
  };
  return (
    <section aria-labelledby="add-heading">
      <h2 id="add-heading">Add liquidity</h2>
      <p>The pool takes both at its price, up to the amounts given; the first deposit makes the pool and sets its price.</p>
      <Form action={add} submit="Add liquidity" label="Add liquidity">
        <Select label="First asset" name="asset_a" options={options} value={first} onChange={(e) => setFirst(e.currentTarget.value)} />
        <Field label="Amount of the first" name="amount_a" required inputMode="decimal" autocomplete="off" />
        <Select label="Second asset" name="asset_b" options={options} value={second} onChange={(e) => setSecond(e.currentTarget.value)} />
        <Field label="Amount of the second" name="amount_b" required inputMode="decimal" autocomplete="off" />
        <Field label="Deadline for adding (seconds)" name="deadline_s" inputMode="numeric" defaultValue="300" autocomplete="off" />
      </Form>
    </section>
  );
}

function RemoveLiquidity({ pools, reload }) {
  const held = pools.filter((p) => BigInt(p.shares) > 0n);
  if (held.length === 0) return null;
  const remove = async (values) => {
    const pool = held.find((p) => p.pool_id === values.pool) ?? held[0];
    const shares = readAmount(values.shares, 0, "shares");
    if (BigInt(shares) > BigInt(pool.shares)) {
      throw new ApiError(422, "invalid_input", `at most the ${formatAmount(pool.shares, 0)} this node holds`, "shares");
    }
    const body = { asset_a: pool.token0, asset_b: pool.token1, shares, deadline_s: deadlineSeconds(values.deadline_s) };
    let made;
    try {
      made = await api("/v1/dex/liquidity/removals", { method: "POST", body });
    } catch (error) {
      throw renamed(error, { deadline: "deadline_s", min_a: "shares" });
    }
    await reload();
    return `Removed ${formatAmount(made.shares, 0)} shares for ${formatAmount(made.amount_a, pool.decimals0)} ${pool.symbol0} and ${formatAmount(made.amount_b, pool.decimals1)} ${pool.symbol1}.`;
  };
  return (
    <section aria-labelledby="remove-heading">
      <h2 id="remove-heading">Remove liquidity</h2>
      <Form action={remove} submit="Remove liquidity" label="Remove liquidity">
        <Select label="Pool" name="pool" options={held.map((p) => ({ value: p.pool_id, label: `${p.symbol0} / ${p.symbol1} (${formatAmount(p.shares, 0)} shares held)` }))} />
        <Field label="Shares to give back" name="shares" required inputMode="numeric" autocomplete="off" hint="Whole shares, at most those held" />
        <Field label="Deadline for removing (seconds)" name="deadline_s" inputMode="numeric" defaultValue="300" autocomplete="off" />
      </Form>
    </section>
  );
}
