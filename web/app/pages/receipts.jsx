// Receipts: the node's metered sessions (`GET /v1/sessions`) and each one's countersigned
// receipt (`GET /v1/sessions/{id}/receipt`), shown and downloadable as the JSON the
// node answered; each session links to the provenance streams written for it.
import { api } from "../api.js";
import { assetAt, loadAssets } from "../assets.js";
import { href } from "../router.js";
import { AmountIn, ErrorBanner, Loading, ShortId, Table, useReady, useResource } from "../ui.jsx";

async function loadSessions() {
  const [listed, assets] = await Promise.all([api("/v1/sessions"), loadAssets()]);
  return { sessions: listed.sessions, assets };
}

export function Receipts() {
  const found = useResource(loadSessions);
  useReady(found.data !== undefined);
  if (!found.data) {
    return (
      <Heading title="Receipts">
        {found.error ? null : <Loading what="Reading the sessions" />}
        <ErrorBanner error={found.error} retry={found.reload} />
      </Heading>
    );
  }
  const { sessions, assets } = found.data;
  const columns = [
    { key: "session_id", label: "Session", render: (s) => <ShortId value={s.session_id} /> },
    { key: "role", label: "Side", render: (s) => (s.role === "buyer" ? "bought" : "sold") },
    { key: "peer", label: "Peer", render: (s) => <ShortId value={s.peer} /> },
    { key: "phase", label: "Phase" },
    { key: "units", label: "Units", numeric: true, render: (s) => String(s.forward.units) },
    { key: "paid", label: "Paid", numeric: true, render: (s) => <AmountIn value={s.forward.paid} asset={assetAt(assets, s.asset)} /> },
    {
      key: "receipt",
      label: "Receipt",
      render: (s) =>
        s.receipt ? (
          <a
            href={href(`/receipts/${s.session_id}`)}
            aria-label={`${s.countersigned ? "Countersigned" : "Signed"} receipt of session ${s.session_id.slice(0, 10)}`}
          >
            {s.countersigned ? "Countersigned" : "Signed"}
          </a>
        ) : (
          "not stopped yet"
        ),
    },
    {
      key: "streams",
      label: "Streams",
      render: (s) => (
        <a href={href(`/streams?session=${s.session_id}`)} aria-label={`Streams of session ${s.session_id.slice(0, 10)}`}>
          Streams
        </a>
      ),
    },
  ];
  return (
    <Heading title="Receipts">
      <ErrorBanner error={found.error} retry={found.reload} />
      <Table
        caption="Sessions and their receipts"
        columns={columns}
        rows={sessions}
        rowKey={(s) => s.session_id}
        empty="No session yet."
        busy={found.updating}
      />
    </Heading>
  );
}

async function loadReceipt(id) {
  // The session too: whether the peer countersigned, and its own receipt.
  const [receipt, session, assets] = await Promise.all([
    api(`/v1/sessions/${id}/receipt`),
    api(`/v1/sessions/${id}`),
    loadAssets(),
  ]);
  return { receipt, session, assets };
}

export function Receipt({ params }) {
  const id = params.id;
  const valid = /^0x[0-9a-fA-F]{64}$/.test(id);
  const found = useResource(() => loadReceipt(id), [id]);
  useReady(found.data !== undefined || (found.error !== null && !found.loading));
  if (!valid) {
    return (
      <Heading title="Receipt">
        <ErrorBanner error={{ message: "a session id is 0x and 64 hex digits", code: "invalid_input" }} />
      </Heading>
    );
  }
  if (!found.data) {
    return (
      <Heading title="Receipt">
        {found.error ? null : <Loading what="Reading the receipt" />}
        <ErrorBanner error={found.error} retry={found.reload} />
      </Heading>
    );
  }
  const { receipt, session, assets } = found.data;
  const asset = assetAt(assets, session.asset);
  const flow = (f) => (
    <>
      {f.units} units, worth <AmountIn value={f.value} asset={asset} />, paid <AmountIn value={f.paid} asset={asset} />
    </>
  );
  return (
    <Heading title="Receipt">
      <p>
        {session.countersigned
          ? "Countersigned: the peer signed the same receipt."
          : "Signed by this node; the peer's signature has not come."}
      </p>
      <dl class="facts" data-testid="receipt">
        <dt>Session</dt>
        <dd>{receipt.session_id}</dd>
        <dt>Channel</dt>
        <dd>{receipt.channel_id}</dd>
        <dt>Forward</dt>
        <dd>{flow(receipt.forward)}</dd>
        <dt>Backward</dt>
        <dd>{flow(receipt.backward)}</dd>
        <dt>Started</dt>
        <dd>{new Date(receipt.started_ms).toISOString()}</dd>
        <dt>Stopped</dt>
        <dd>{new Date(receipt.stopped_ms).toISOString()}</dd>
        <dt>This node's signature</dt>
        <dd>{receipt.signature}</dd>
        <dt>The peer's signature</dt>
        <dd>{session.peer_receipt ? session.peer_receipt.signature : "none yet"}</dd>
      </dl>
      <button type="button" onClick={() => download(`receipt-${receipt.session_id}.json`, receipt)}>
        Download JSON
      </button>{" "}
      <a href={href(`/streams?session=${receipt.session_id}`)}>Streams of this session</a>
      <h2>As JSON</h2>
      <pre class="json" tabIndex={0} aria-label="The receipt as JSON">
        {JSON.stringify(receipt, null, 2)}
      </pre>
    </Heading>
  );
}

/** The receipt as the node answered it, saved as a file (a blob: nothing leaves the page). */
function download(name, value) {
  const blob = new Blob([JSON.stringify(value, null, 2) + "\n"], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

function Heading({ title, children }) {
  return (
    <>
      <h1 tabIndex={-1}>{title}</h1>
      {children}
    </>
  );
}
