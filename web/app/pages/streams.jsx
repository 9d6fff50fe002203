// Streams: the provenance streams this node holds (`GET /v1/streams`, or one session's
// with `?session=`), each opened in the node's web reader by the URL the node makes
// (`GET /v1/streams/{id}/reader`: a restricted stream's key only in the fragment, which
// no browser sends to a server), and the node's own verification (`…/verify`).
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { href } from "../router.js";
import { ErrorBanner, Loading, ShortId, Table, useReady, useResource } from "../ui.jsx";

const HEX32 = /^0x[0-9a-fA-F]{64}$/;

export function Streams({ query }) {
  const session = query.get("session");
  const wanted = session && HEX32.test(session) ? session : null;
  const found = useResource(
    () => api(wanted ? `/v1/streams?session=${wanted}` : "/v1/streams"),
    [wanted],
  );
  useReady(found.data !== undefined);
  const title = wanted ? "Streams of a session" : "Streams";
  if (!found.data) {
    return (
      <Heading title={title}>
        {found.error ? null : <Loading what="Reading the streams" />}
        <ErrorBanner error={found.error} retry={found.reload} />
      </Heading>
    );
  }
  const columns = [
    {
      key: "stream_id",
      label: "Stream",
      render: (s) => (
        <a href={href(`/streams/${s.stream_id}`)} aria-label={`Stream ${s.stream_id.slice(0, 10)}…${s.stream_id.slice(-6)}`}>
          <ShortId value={s.stream_id} />
        </a>
      ),
    },
    { key: "purpose", label: "Purpose" },
    { key: "access", label: "Access" },
    { key: "count", label: "Messages", numeric: true },
    { key: "anchored_to", label: "Anchored to", numeric: true, render: (s) => (s.anchored_to === null ? "not yet" : `#${s.anchored_to}`) },
    {
      key: "session",
      label: "Session",
      render: (s) => (s.session ? <a href={href(`/receipts/${s.session}`)}><ShortId value={s.session} /></a> : "—"),
    },
  ];
  return (
    <Heading title={title}>
      {wanted ? (
        <p>
          Session <code>{wanted}</code> · <a href={href("/streams")}>all streams</a>
        </p>
      ) : null}
      <ErrorBanner error={found.error} retry={found.reload} />
      <Table
        caption="Provenance streams"
        columns={columns}
        rows={found.data.streams}
        rowKey={(s) => s.stream_id}
        empty="No stream here yet."
        busy={found.updating}
      />
    </Heading>
  );
}

async function loadStream(id) {
  const [stream, reader] = await Promise.all([api(`/v1/streams/${id}`), api(`/v1/streams/${id}/reader`)]);
  return { stream, reader };
}

export function Stream({ params }) {
  const id = params.id;
  const found = useResource(() => loadStream(id), [id]);
  const [checked, setChecked] = useState(null); // {busy} | {report} | {error}
  useReady(found.data !== undefined);
  if (!HEX32.test(id)) {
    return (
      <Heading title="Stream">
        <ErrorBanner error={{ message: "a stream id is 0x and 64 hex digits", code: "invalid_input" }} />
      </Heading>
    );
  }
  if (!found.data) {
    return (
      <Heading title="Stream">
        {found.error ? null : <Loading what="Reading the stream" />}
        <ErrorBanner error={found.error} retry={found.reload} />
      </Heading>
    );
  }
  const { stream, reader } = found.data;
  const verify = async () => {
    setChecked({ busy: true });
    try {
      setChecked({ report: await api(`/v1/streams/${id}/verify`) });
    } catch (error) {
      setChecked({ error });
    }
  };
  return (
    <Heading title="Stream">
      <dl class="facts">
        <dt>Stream</dt>
        <dd>{stream.stream_id}</dd>
        <dt>Author</dt>
        <dd>{stream.author}</dd>
        <dt>Purpose</dt>
        <dd>{stream.purpose}</dd>
        <dt>Access</dt>
        <dd>{stream.access}</dd>
        <dt>Messages</dt>
        <dd>{stream.count}</dd>
        <dt>Anchored to</dt>
        <dd>{stream.anchored_to === null ? "not yet" : `message #${stream.anchored_to}`}</dd>
        <dt>Session</dt>
        <dd>{stream.session ? <a href={href(`/receipts/${stream.session}`)}>{stream.session}</a> : "—"}</dd>
      </dl>
      <p>
        {/* The key rides in the fragment: no referrer, a new tab, nothing sent to a server. */}
        <a href={reader.url} target="_blank" rel="noopener noreferrer" data-testid="open-reader">
          Open in the reader
        </a>{" "}
        {reader.keyed ? "(the link holds the stream's key after the #: share it only with whom may read it)" : null}
      </p>
      <h2>The node's own check</h2>
      <button type="button" onClick={verify} disabled={checked?.busy} aria-busy={checked?.busy ? "true" : undefined}>
        {checked?.busy ? "Verifying…" : "Verify on the node"}
      </button>
      <div aria-live="polite">
        {checked?.report ? <Verdict report={checked.report} /> : null}
        {checked?.error ? <ErrorBanner error={checked.error} retry={verify} /> : null}
      </div>
    </Heading>
  );
}

function Verdict({ report }) {
  if (report.ok && report.anchors.every((a) => a.ok)) {
    return (
      <p class="verdict good" data-state="verified">
        Verified: all {report.verified} of {report.count} messages
        {report.payloads_checked ? ", payloads too" : ""}; {report.anchors.length} anchor
        {report.anchors.length === 1 ? "" : "s"} checked against the chain.
      </p>
    );
  }
  const problem = report.problem;
  const anchor = report.anchors.find((a) => !a.ok);
  return (
    <div class="verdict bad" data-state="failed">
      <p>
        Not verified: {report.verified} of {report.count} messages before the problem.
      </p>
      {problem ? (
        <p>
          Problem <code>{problem.code}</code>
          {problem.index !== null ? ` at message index ${problem.index}` : ""}: {problem.detail}
        </p>
      ) : null}
      {anchor ? (
        <p>
          Anchor <code>{anchor.problem}</code>: {anchor.detail}
        </p>
      ) : null}
    </div>
  );
}

function Heading({ title, children }) {
  return (
    <>
      <h1 tabIndex={-1}>{title}</h1>
      {children}
    </>
  );
}
