// The explorer's chain pages: blocks (newest first, a page at a time, the first page kept
// live as blocks arrive), one block, one transaction with its call and events decoded.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { href } from "../router.js";
import { useEvents } from "../sse.js";
import { Amount, ErrorBanner, Loading, Table, useReady, useResource } from "../ui.jsx";
import {
  AddressLink,
  Args,
  BlockLink,
  ChainTime,
  TxLink,
  explorerPath,
  short,
} from "../explorer_kit.jsx";

const PAGE = 25;
const HEAD_POLL_MS = 2_000; // the dev chain mines on demand: a head read every 2 s is cheap

function Page({ title, children }) {
  return (
    <>
      <h1 tabIndex={-1}>{title}</h1>
      {children}
    </>
  );
}

/** A resource's loading and error states, then `children(data)` once complete. */
function Loaded({ found, what, children }) {
  if (found.data === undefined) {
    return (
      <>
        {found.loading ? <Loading what={what} /> : null}
        <ErrorBanner error={found.error} retry={found.reload} />
      </>
    );
  }
  return (
    <>
      <ErrorBanner error={found.error} retry={found.reload} />
      {children(found.data)}
    </>
  );
}

export function Blocks({ query }) {
  const before = query.get("before");
  const valid = before === null || /^[1-9][0-9]{0,19}$/.test(before);
  const path = `/v1/explorer/blocks?limit=${PAGE}${before ? `&before=${before}` : ""}`;
  const found = useResource(() => api(path), [path]);
  useReady(found.data !== undefined);
  useLiveHead(before === null ? found : null);
  if (!valid) {
    return (
      <Page title="Blocks">
        <ErrorBanner error={{ message: "before: a block number above 0", code: "invalid_input" }} />
      </Page>
    );
  }
  const columns = [
    { key: "number", label: "Block", render: (b) => <BlockLink number={b.number} /> },
    { key: "time", label: "Time (UTC)", render: (b) => <ChainTime seconds={b.timestamp} /> },
    { key: "txs", label: "Transactions", numeric: true, render: (b) => b.transactions.length },
    { key: "gas", label: "Gas used", numeric: true, render: (b) => String(b.gas_used) },
    { key: "hash", label: "Hash", render: (b) => <span class="mono" title={b.hash}>{short(b.hash)}</span> },
  ];
  return (
    <Page title="Blocks">
      <Loaded found={found} what="Reading the newest blocks">
        {(page) => (
          <>
            <p aria-live="polite">
              {before === null ? (
                <>
                  Head: block <BlockLink number={page.head} />
                  {found.updating ? <span class="updating"> (updating…)</span> : null}
                </>
              ) : (
                <>
                  Blocks below {before}. <a href={href(explorerPath.blocks())}>Newest blocks</a>
                </>
              )}
            </p>
            <Table
              caption={before === null ? "Newest blocks" : `Blocks below ${before}`}
              columns={columns}
              rows={page.blocks}
              rowKey={(b) => b.number}
              busy={found.updating}
              empty="No blocks."
            />
            {page.next_before !== null ? (
              <nav aria-label="Pages of blocks">
                <a href={href(explorerPath.blocks(page.next_before))}>Older blocks</a>
              </nav>
            ) : null}
          </>
        )}
      </Loaded>
    </Page>
  );
}

/** The first page reads again when the head moves: polled, and on the node's channel events. */
function useLiveHead(found) {
  const head = found?.data?.head;
  const latest = useRef({ found, head });
  latest.current = { found, head };
  useEvents(({ event }) => {
    if (event === "channel") latest.current.found?.reload();
  });
  useEffect(() => {
    if (!found) return undefined;
    let stopped = false;
    const timer = setInterval(async () => {
      const { found: now, head: shown } = latest.current;
      if (stopped || now === null || now.updating || shown === undefined) return;
      try {
        const newest = await api("/v1/explorer/blocks?limit=1");
        if (!stopped && newest.head !== latest.current.head) now.reload();
      } catch {
        // the next poll asks again; the page keeps its complete answer meanwhile
      }
    }, HEAD_POLL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [found === null]);
}

export function Block({ params }) {
  const ref = params.ref;
  const found = useResource(() => api(`/v1/explorer/blocks/${encodeURIComponent(ref)}`), [ref]);
  useReady(found.data !== undefined);
  const title = /^[0-9]+$/.test(ref) ? `Block ${ref}` : "Block";
  return (
    <Page title={found.data ? `Block ${found.data.number}` : title}>
      <Loaded found={found} what="Reading the block">
        {(block) => (
          <>
            <dl class="facts">
              <dt>Number</dt>
              <dd>{block.number}</dd>
              <dt>Hash</dt>
              <dd>{block.hash}</dd>
              <dt>Parent</dt>
              <dd>{block.number > 0 ? <BlockLink number={block.number - 1} /> : "none (genesis)"}</dd>
              <dt>Time (UTC)</dt>
              <dd>
                <ChainTime seconds={block.timestamp} />
              </dd>
              <dt>Gas used</dt>
              <dd>
                {String(block.gas_used)} of {String(block.gas_limit)}
              </dd>
            </dl>
            <nav aria-label="Neighbouring blocks" class="pager">
              {block.number > 0 ? <a href={href(explorerPath.block(block.number - 1))}>Previous block</a> : null}
              <a href={href(explorerPath.block(block.number + 1))}>Next block</a>
              <a href={href(explorerPath.blocks(block.number + 1))}>In the list of blocks</a>
            </nav>
            <h2>Transactions ({block.transactions.length})</h2>
            {block.transactions.length === 0 ? (
              <p class="empty">No transactions in this block.</p>
            ) : (
              <ol class="mono">
                {block.transactions.map((hash) => (
                  <li key={hash}>
                    <TxLink hash={hash} full />
                  </li>
                ))}
              </ol>
            )}
          </>
        )}
      </Loaded>
    </Page>
  );
}

export function Transaction({ params }) {
  const hash = params.hash;
  const found = useResource(() => api(`/v1/explorer/transactions/${encodeURIComponent(hash)}`), [hash]);
  useReady(found.data !== undefined);
  return (
    <Page title="Transaction">
      <Loaded found={found} what="Reading the transaction">
        {(tx) => (
          <>
            <dl class="facts">
              <dt>Hash</dt>
              <dd>{tx.hash}</dd>
              <dt>Status</dt>
              <dd class={tx.status === "success" ? "good" : "bad"}>{tx.status}</dd>
              <dt>Block</dt>
              <dd>
                <BlockLink number={tx.block} /> (position {tx.index})
              </dd>
              <dt>Time (UTC)</dt>
              <dd>
                <ChainTime seconds={tx.timestamp} />
              </dd>
              <dt>From</dt>
              <dd>
                <AddressLink address={tx.sender} full />
              </dd>
              <dt>To</dt>
              <dd>
                {tx.to ? <AddressLink address={tx.to} full /> : "none: it deployed a contract"}
                {tx.call.contract ? ` (${tx.call.contract})` : ""}
              </dd>
              {tx.contract_created ? (
                <>
                  <dt>Contract created</dt>
                  <dd>
                    <AddressLink address={tx.contract_created} full />
                  </dd>
                </>
              ) : null}
              <dt>Value</dt>
              <dd>
                <Amount value={tx.value} decimals={18} symbol="ETH" />
              </dd>
              <dt>Gas used</dt>
              <dd>
                {String(tx.gas_used)} of {String(tx.gas)} at {tx.effective_gas_price} wei
              </dd>
              <dt>Nonce</dt>
              <dd>{tx.nonce}</dd>
            </dl>
            <Call tx={tx} />
            <Events events={tx.events} />
          </>
        )}
      </Loaded>
    </Page>
  );
}

function Call({ tx }) {
  const { call } = tx;
  return (
    <section aria-labelledby="call-heading">
      <h2 id="call-heading">Call</h2>
      {call.function ? (
        <>
          <p data-testid="call">
            <strong>{call.contract}</strong>.<strong>{call.function}</strong>
            <span class="muted"> (selector {call.selector})</span>
          </p>
          <Args args={call.args} />
        </>
      ) : (
        <>
          <p data-testid="call">
            {call.contract ? `${call.contract}: ` : ""}not a function this explorer knows; the raw input:
          </p>
          <pre class="raw">{tx.input}</pre>
        </>
      )}
    </section>
  );
}

function Events({ events }) {
  return (
    <section aria-labelledby="events-heading">
      <h2 id="events-heading">Events ({events.length})</h2>
      {events.length === 0 ? <p class="empty">It emitted no events.</p> : null}
      <ol class="events">
        {events.map((e) => (
          <li key={e.log_index} data-testid="event">
            <h3>
              {e.event ?? "Unknown event"}
              <span class="muted">
                {" "}
                from {e.contract ?? "a contract"} <AddressLink address={e.address} /> (log {e.log_index})
              </span>
            </h3>
            {e.event ? (
              <Args args={e.args} />
            ) : (
              <dl class="args">
                <div>
                  <dt>topics</dt>
                  <dd>
                    <ol class="args-list mono">
                      {e.topics.map((t, i) => (
                        <li key={i}>{t}</li>
                      ))}
                    </ol>
                  </dd>
                </div>
                <div>
                  <dt>data</dt>
                  <dd class="mono raw">{e.data}</dd>
                </div>
              </dl>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
