// Data: the feeds a seller node sells (read through this node: `POST /v1/storefront`,
// as the page may reach no other origin), buying time on one (`POST /v1/grants`, as
// `m2mpay data buy` does), the credentials of that answer shown once and kept nowhere,
// and the grants this node bought and sold with their paid time counting down.
import { Fragment } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, parseAmount } from "../api.js";
import { assetAt, loadAssets } from "../assets.js";
import { useEvents } from "../sse.js";
import {
  Amount,
  AmountIn,
  CopyButton,
  ErrorBanner,
  Field,
  Form,
  Loading,
  ShortId,
  Table,
  useNow,
  useReady,
  useResource,
} from "../ui.jsx";

const HOUR_S = 3600;

async function load() {
  const [grants, assets] = await Promise.all([api("/v1/grants"), loadAssets()]);
  return { grants: grants.grants, assets };
}

export function Data() {
  const found = useResource(load);
  const [seller, setSeller] = useState(null); // {url, feeds}
  const [chosen, setChosen] = useState(null);
  // The one answer holding a password: in this component's state only, gone on leaving.
  const [bought, setBought] = useState(null);
  useReady(found.data !== undefined);
  useReloadOnSessionEvents(found.reload);
  if (!found.data) {
    return (
      <Heading>
        {found.error ? null : <Loading what="Reading the grants" />}
        <ErrorBanner error={found.error} retry={found.reload} />
      </Heading>
    );
  }
  const { assets } = found.data;
  const show = async ({ seller: url }) => {
    const wanted = (url ?? "").trim().replace(/\/+$/, "");
    if (!/^https?:\/\/\S+$/.test(wanted)) {
      throw new ApiError(422, "invalid_input", "the seller node's URL, http://… or https://…", "seller");
    }
    const listed = await api("/v1/storefront", { method: "POST", body: { seller: wanted } });
    setSeller({ url: wanted, feeds: listed.feeds });
    setChosen(null);
    return `${listed.feeds.length} feed${listed.feeds.length === 1 ? "" : "s"} for sale there.`;
  };
  const buy = async (values) => {
    const body = { seller: seller.url, feed_id: chosen.feed_id, ...unitsOf(chosen, values) };
    if ((values.deposit ?? "").trim()) {
      body.deposit = amountField(values.deposit, assetAt(assets, chosen.asset).decimals, "deposit");
    }
    const username = (values.username ?? "").trim();
    const password = values.password ?? "";
    if (username || password) Object.assign(body, { username, password });
    const answer = await api("/v1/grants", { method: "POST", body });
    setBought(answer);
    setChosen(null);
    await found.reload();
    return null;
  };
  return (
    <Heading>
      <section aria-labelledby="shop-heading">
        <h2 id="shop-heading">Feeds for sale</h2>
        <Form action={show} submit="Show its feeds" label="A seller's feeds">
          <Field
            label="Seller node's URL"
            name="seller"
            required
            autocomplete="url"
            spellcheck={false}
            hint="The API URL of the node that sells the data, e.g. http://127.0.0.1:8700"
          />
        </Form>
        {seller ? <Feeds seller={seller} assets={assets} onChoose={setChosen} /> : null}
        {chosen ? <BuyForm feed={chosen} asset={assetAt(assets, chosen.asset)} action={buy} /> : null}
      </section>
      {bought ? <Credentials bought={bought} onForget={() => setBought(null)} /> : null}
      <Grants found={found} />
    </Heading>
  );
}

function Heading({ children }) {
  return (
    <>
      <h1 tabIndex={-1}>Data</h1>
      {children}
    </>
  );
}

function unitsOf(feed, values) {
  const [field, what] = feed.unit === "message" ? ["messages", "messages"] : ["seconds", "seconds"];
  const text = (values[field] ?? "").trim();
  if (!/^\d+$/.test(text) || BigInt(text) < 1n) {
    throw new ApiError(422, "invalid_input", `a whole number of ${what}`, field);
  }
  return { [field]: Number(text) }; // a count, not an amount: bounded by the feed
}

function amountField(text, decimals, field) {
  try {
    return parseAmount(text, decimals);
  } catch (error) {
    throw new ApiError(422, "invalid_input", error.message, field);
  }
}

function Feeds({ seller, assets, onChoose }) {
  const columns = [
    { key: "device_id", label: "Device" },
    { key: "unit", label: "Sold by", render: (f) => (f.unit === "message" ? "the message" : "the second") },
    {
      key: "price",
      label: "Price",
      numeric: true,
      render: (f) =>
        f.unit === "message" ? (
          <>
            <AmountIn value={f.price_per_message} asset={assetAt(assets, f.asset)} /> a message
          </>
        ) : (
          <>
            <AmountIn value={f.price_per_hour} asset={assetAt(assets, f.asset)} /> an hour
          </>
        ),
    },
    { key: "limits", label: "Seconds", render: (f) => (f.unit === "message" ? "—" : `${f.min_seconds} to ${f.max_seconds}`) },
    { key: "live_topic", label: "Live topic", render: (f) => <code>{f.live_topic}</code> },
    {
      key: "buy",
      label: "Buy",
      render: (f) => (
        <button type="button" class="small" onClick={() => onChoose(f)} aria-label={`Buy ${f.device_id} by the ${f.unit === "message" ? "message" : "second"}`}>
          Buy
        </button>
      ),
    },
  ];
  return (
    <Table
      caption={`Feeds of ${seller.url}`}
      columns={columns}
      rows={seller.feeds}
      rowKey={(f) => f.feed_id}
      empty="That node sells no feeds."
    />
  );
}

function BuyForm({ feed, asset, action }) {
  const byMessage = feed.unit === "message";
  const hour = Math.min(Math.max(HOUR_S, feed.min_seconds), feed.max_seconds);
  return (
    <section aria-labelledby="buy-heading">
      <h3 id="buy-heading">Buy {feed.device_id}</h3>
      <Form action={action} submit="Buy" label={`Buy ${feed.device_id}`}>
        {byMessage ? (
          <Field label="Messages" name="messages" required inputMode="numeric" defaultValue="100" autocomplete="off" />
        ) : (
          <Field
            label="Seconds"
            name="seconds"
            required
            inputMode="numeric"
            defaultValue={String(hour)}
            autocomplete="off"
            hint={`${feed.min_seconds} to ${feed.max_seconds}; an hour is 3600`}
          />
        )}
        <Field
          label={`Deposit (${asset.symbol}, optional)`}
          name="deposit"
          inputMode="decimal"
          autocomplete="off"
          hint="Opens a channel to the seller with this if none is free"
        />
        <Field label="MQTT username (optional)" name="username" autocomplete="off" spellcheck={false} hint="Leave both empty and the node makes them up" />
        <Field label="MQTT password (optional)" name="password" type="password" autocomplete="new-password" hint="16 to 128 printable characters, no spaces" />
      </Form>
    </section>
  );
}

/** The purchase's credentials: this answer is the only place they ever are. */
function Credentials({ bought, onForget }) {
  const heading = useRef(null);
  useEffect(() => heading.current?.focus(), []);
  const topic = bought.grant.live_topic;
  const command = [
    "mosquitto_sub",
    "-h", bought.host, "-p", String(bought.port),
    "-u", bought.username, "-P", bought.password,
    ...(bought.client_id ? ["-i", bought.client_id, "-c"] : []),
    "-t", topic, "-v",
  ].map(quoted).join(" ");
  const rows = [
    ["Broker", `${bought.host}:${bought.port}`, "broker"],
    ["Live topic", topic, "topic"],
    ["Username", bought.username, "username"],
    ["Password", bought.password, "password"],
    ...(bought.client_id ? [["Client id", bought.client_id, "client-id"]] : []),
    ["Command", command, "command"],
  ];
  return (
    <section class="once" aria-labelledby="credentials-heading" data-testid="credentials">
      <h2 id="credentials-heading" tabIndex={-1} ref={heading}>
        Your credentials: shown once
      </h2>
      <p role="alert">
        Copy them now. Neither this node nor this page keeps the password: it is gone when you
        leave this page or press “Forget them”.
      </p>
      <p>
        {bought.readable
          ? "The seller's broker already lets them read the live topic."
          : "The seller had not granted them yet when the node answered; try again in a few seconds."}
      </p>
      <dl class="facts">
        {rows.map(([label, value, id]) => (
          <Fragment key={id}>
            <dt>{label}</dt>
            <dd>
              <code data-testid={`credential-${id}`}>{value}</code>
              <CopyButton text={value} label={`Copy the ${label.toLowerCase()}`} />
            </dd>
          </Fragment>
        ))}
      </dl>
      <button type="button" onClick={onForget}>
        Forget them
      </button>
    </section>
  );
}

const quoted = (word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);

function Grants({ found }) {
  const now = useNow();
  const { grants, assets } = found.data;
  const columns = [
    { key: "role", label: "Side", render: (g) => (g.role === "buyer" ? "bought" : "sold") },
    { key: "device_id", label: "Device" },
    { key: "peer", label: "Seller or buyer", render: (g) => <ShortId value={g.peer} /> },
    { key: "username", label: "Username", render: (g) => <code>{g.username}</code> },
    { key: "phase", label: "Phase" },
    { key: "bought", label: "Bought", numeric: true, render: (g) => (g.unit === "message" ? `${g.messages ?? 0} messages` : `${g.seconds} s`) },
    { key: "paid", label: "Paid", numeric: true, render: (g) => (g.asset ? <AmountIn value={g.paid} asset={assetAt(assets, g.asset)} /> : <Amount value={g.paid} decimals={0} />) },
    { key: "until", label: "Paid until", render: (g) => <Countdown until={g.paid_until_ms} now={now} /> },
    { key: "extend", label: "More", render: (g) => (g.role === "buyer" ? <Extend grant={g} onDone={found.reload} /> : "—") },
  ];
  return (
    <section aria-labelledby="grants-heading">
      <h2 id="grants-heading">Grants</h2>
      <ErrorBanner error={found.error} retry={found.reload} />
      <div aria-live="polite">{found.updating ? <p class="updating">Updating the grants…</p> : null}</div>
      <Table
        caption="Grants bought and sold"
        columns={columns}
        rows={grants}
        rowKey={(g) => `${g.role}-${g.session_id}`}
        empty="No grant bought or sold yet."
        busy={found.updating}
      />
    </section>
  );
}

function Countdown({ until, now }) {
  if (until === null || until === undefined) return "—";
  const left = Math.floor((until - now) / 1000);
  const at = new Date(until).toLocaleTimeString();
  if (left <= 0) return <span data-left="0">ended at {at}</span>;
  const minutes = Math.floor(left / 60);
  return (
    <span data-left={String(left)} title={`until ${at}`}>
      {minutes ? `${minutes} min ` : ""}
      {left % 60} s left
    </span>
  );
}

function Extend({ grant, onDone }) {
  const [open, setOpen] = useState(false);
  const field = grant.unit === "message" ? "messages" : "seconds";
  if (!open) {
    return (
      <button type="button" class="small" onClick={() => setOpen(true)} aria-label={`Extend the grant of ${grant.device_id}`}>
        Extend
      </button>
    );
  }
  const extend = async (values) => {
    const units = unitsOf(grant, values);
    await api(`/v1/grants/${grant.session_id}/extend`, { method: "POST", body: units });
    setOpen(false);
    await onDone();
  };
  return (
    <div class="inline-form">
      <Form action={extend} submit="Extend" label={`Extend the grant of ${grant.device_id}`}>
        <Field label={field === "messages" ? "Messages more" : "Seconds more"} name={field} required inputMode="numeric" defaultValue={field === "messages" ? "100" : "600"} autocomplete="off" />
      </Form>
    </div>
  );
}

const EVENT_SETTLE_MS = 1000; // a metered session's events come every payment: one reload

function useReloadOnSessionEvents(reload) {
  const timer = useRef(null);
  useEvents(({ event }) => {
    if (event !== "session" || timer.current !== null) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      reload();
    }, EVENT_SETTLE_MS);
  });
  useEffect(() => () => clearTimeout(timer.current), []);
}
