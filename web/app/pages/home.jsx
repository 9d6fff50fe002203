// The overview: who this node is (public `/v1/info`) and where to go from here.
import { nodeInfo } from "../api.js";
import { href } from "../router.js";
import { ErrorBanner, Loading, useReady, useResource } from "../ui.jsx";

export function Home() {
  const info = useResource(nodeInfo);
  useReady(info.data !== undefined);
  const node = info.data;
  return (
    <>
      <h1 tabIndex={-1}>Overview</h1>
      <ErrorBanner error={info.error} retry={info.reload} />
      {info.loading ? <Loading what="Asking the node who it is" /> : null}
      {node ? (
        <section aria-labelledby="node-heading">
          <h2 id="node-heading">This node</h2>
          <dl class="facts">
            <dt>Address</dt>
            <dd data-testid="node-address">{node.address}</dd>
            <dt>Chain</dt>
            <dd>
              {node.chain} ({node.ledger}
              {node.dev_chain ? ", development chain" : ""})
            </dd>
            <dt>Token</dt>
            <dd>
              {node.contracts.token_symbol} at {node.contracts.token}
            </dd>
            <dt>Hub</dt>
            <dd>{node.contracts.hub}</dd>
            <dt>Peers reach it at</dt>
            <dd>{node.peer_endpoint ?? "nowhere (no wire endpoint)"}</dd>
            <dt>Version</dt>
            <dd>{node.version}</dd>
            <dt>Public reads</dt>
            <dd>{node.public_reads ? "yes: reads need no token" : "no: reads need the token"}</dd>
          </dl>
        </section>
      ) : null}
      <section aria-labelledby="links-heading">
        <h2 id="links-heading">Go to</h2>
        <ul>
          <li>
            <a href={href("/wallet")}>The wallet</a>: balances, the dev faucet, sending
          </li>
          <li>
            <a href="/docs">The API's documentation</a> (every page here is a view of it)
          </li>
          <li>
            <a href="/provenance/reader/">The provenance stream reader</a>
          </li>
        </ul>
      </section>
    </>
  );
}
