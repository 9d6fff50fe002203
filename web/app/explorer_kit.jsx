// What the explorer's pages share: links to every kind of thing on chain (addresses, txs,
// blocks, channels), decoded arguments shown with those links, a token's decimals, the
// chain's clock, and the header's search box.
import { useState } from "preact/hooks";
import { ApiError, api, decimalsOf } from "./api.js";
import { href, navigate } from "./router.js";

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const HASH = /^0x[0-9a-fA-F]{64}$/;
const NUMBER = /^[0-9]{1,20}$/;

export const explorerPath = {
  blocks: (before) => (before ? `/explorer?before=${before}` : "/explorer"),
  block: (ref) => `/explorer/block/${ref}`,
  tx: (hash) => `/explorer/tx/${hash}`,
  address: (address) => `/explorer/address/${address}`,
  channel: (id) => `/explorer/channel/${id}`,
};

/** 0x1234…cdef: a hash or address short enough for a table; the whole one in its title. */
export function short(value) {
  return value.length > 14 ? `${value.slice(0, 8)}…${value.slice(-6)}` : value;
}

function Linked({ to, value, full }) {
  return (
    <a href={href(to)} class="mono" title={full ? undefined : value}>
      {full ? value : short(value)}
    </a>
  );
}

export const AddressLink = ({ address, full = false }) =>
  address ? <Linked to={explorerPath.address(address)} value={address} full={full} /> : <span>none</span>;
export const TxLink = ({ hash, full = false }) => <Linked to={explorerPath.tx(hash)} value={hash} full={full} />;
export const ChannelLink = ({ id, full = false }) => (
  <Linked to={explorerPath.channel(id)} value={id} full={full} />
);
export const BlockLink = ({ number }) => (
  <a href={href(explorerPath.block(number))} class="mono">
    {String(number)}
  </a>
);

/** A block's time (the chain's clock, seconds) as UTC; a clock, never an amount. */
export function ChainTime({ seconds }) {
  const when = new Date(seconds * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC");
  return <time dateTime={new Date(seconds * 1000).toISOString()}>{when}</time>;
}

/**
 * One decoded value: addresses and channel ids as links, integers as the decimal strings
 * the node sent (their unit is the contract's, so no decimals are guessed), structs and
 * lists nested.
 */
export function ArgValue({ name, value }) {
  if (value === null || value === undefined) return <span class="muted">null</span>;
  if (Array.isArray(value)) {
    if (value.length === 0) return <span class="muted">[]</span>;
    return (
      <ol class="args-list">
        {value.map((item, i) => (
          <li key={i}>
            <ArgValue name={name} value={item} />
          </li>
        ))}
      </ol>
    );
  }
  if (typeof value === "object") return <Args args={value} />;
  const text = String(value);
  if (ADDRESS.test(text)) return <AddressLink address={text} full />;
  if (HASH.test(text) && /channel/i.test(name)) return <ChannelLink id={text} full />;
  return <span class="mono">{text}</span>;
}

/** Arguments by name, as a description list. */
export function Args({ args }) {
  const entries = Object.entries(args ?? {});
  if (entries.length === 0) return <span class="muted">no arguments</span>;
  return (
    <dl class="args">
      {entries.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>
            <ArgValue name={name} value={value} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

const decimalsKnown = new Map();
/** A token's decimals: the deployment token's from /v1/info, a factory token's from
 * /v1/tokens/{address}; null when the node cannot tell (shown then in the smallest unit). */
export async function tokenDecimals(info, token) {
  const key = token.toLowerCase();
  if (key === info.contracts.token.toLowerCase() || /^0x0{40}$/.test(key)) return decimalsOf(info, token);
  if (!decimalsKnown.has(key)) {
    const asked = api(`/v1/tokens/${token}`)
      .then((found) => found.token.decimals)
      .catch((error) => {
        if (error instanceof ApiError && error.status === 404) return null;
        decimalsKnown.delete(key); // not an answer: ask again next time
        throw error;
      });
    decimalsKnown.set(key, asked);
  }
  return decimalsKnown.get(key);
}

/** What a search query is, checked before it leaves (the node checks it again). */
export function searchProblem(query) {
  const q = query.trim();
  if (q === "") return "a block number, an address, a transaction hash or a channel id";
  if (NUMBER.test(q) || ADDRESS.test(q) || HASH.test(q)) return null;
  return "a block number, 0x and 40 hex digits (an address) or 0x and 64 (a hash or channel id)";
}

const PAGE_OF_KIND = {
  block: explorerPath.block,
  transaction: explorerPath.tx,
  channel: explorerPath.channel,
  address: explorerPath.address,
};

/** The header's search: asks the node what the query names and goes to its page. */
export function SearchBox() {
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const onSubmit = async (event) => {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget;
    const query = String(new FormData(form).get("q") ?? "").trim();
    const wrong = searchProblem(query);
    setProblem(wrong);
    if (wrong) return;
    setBusy(true);
    try {
      const hit = await api(`/v1/explorer/search?q=${encodeURIComponent(query)}`);
      form.reset();
      navigate(PAGE_OF_KIND[hit.kind](hit.id));
    } catch (error) {
      setProblem(error.status === 404 ? `nothing on chain is ${short(query)}` : error.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="search" role="search" aria-label="Search the chain" onSubmit={onSubmit} noValidate>
      <label for="chain-search">Search the chain</label>
      <input
        id="chain-search"
        name="q"
        type="search"
        placeholder="block, tx hash, address, channel id"
        autocomplete="off"
        spellcheck={false}
        aria-invalid={problem ? "true" : undefined}
        aria-describedby={problem ? "chain-search-problem" : undefined}
      />
      <button type="submit" disabled={busy} aria-busy={busy ? "true" : undefined}>
        Search
      </button>
      <small id="chain-search-problem" class="field-error" role="alert">
        {problem}
      </small>
    </form>
  );
}
