// Shared components. Every page builds from these so forms, amounts, loading and errors
// look and behave the same (and are accessible the same way) everywhere.
import { createContext } from "preact";
import { useCallback, useContext, useEffect, useId, useRef, useState } from "preact/hooks";
import { ApiError, formatAmount } from "./api.js";

/** A page tells the shell its main content is shown and usable: `data-ready` on <main>. */
export const PageReady = createContext(() => {});
export function useReady(isReady) {
  const ready = useContext(PageReady);
  useEffect(() => {
    if (isReady) ready();
  }, [isReady, ready]);
}

/**
 * `useResource(load, deps)`: {data, error, loading, updating, reload}. `data` is only ever a
 * complete answer; while a reload is pending the old answer stays with `updating` true,
 * so a page shows it as "updating", never as final.
 */
export function useResource(load, deps = []) {
  const [state, setState] = useState({ data: undefined, error: null, pending: true });
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, pending: true }));
    try {
      const data = await load();
      if (mine === generation.current) setState({ data, error: null, pending: false });
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ ...s, error, pending: false }));
    }
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  const { data, error, pending } = state;
  return { data, error, loading: pending && data === undefined, updating: pending && data !== undefined, reload };
}

export function Loading({ what = "Loading" }) {
  return (
    <p class="loading" role="status">
      {what}…
    </p>
  );
}

/** An error from the node (or a thrown one), announced. */
export function ErrorBanner({ error, retry }) {
  if (!error) return null;
  return (
    <div class="error-banner" role="alert">
      <p>
        {error.message}
        {error.code ? <span class="code"> ({error.code})</span> : null}
      </p>
      {retry ? (
        <button type="button" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/** An integer-string amount shown with its decimals: never through a float. */
export function Amount({ value, decimals, symbol }) {
  return (
    <data class="amount" value={value}>
      {formatAmount(value, decimals)}
      {symbol ? ` ${symbol}` : ""}
    </data>
  );
}

/** An amount in `asset` ({decimals, symbol}, as `assetAt` gives it): scaled and named by it. */
export function AmountIn({ value, asset }) {
  return <Amount value={value} decimals={asset.decimals} symbol={asset.symbol} />;
}

/** columns: [{key, label, render?(row), numeric?}]; rows: objects; `rowKey(row)`. */
export function Table({ caption, columns, rows, rowKey, empty = "Nothing yet.", busy = false }) {
  if (rows.length === 0) return <p class="empty">{empty}</p>;
  return (
    <table aria-busy={busy ? "true" : undefined}>
      <caption>{caption}</caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th scope="col" key={c.key} class={c.numeric ? "numeric" : undefined}>
              {c.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={rowKey(row)}>
            {columns.map((c) => (
              <td key={c.key} class={c.numeric ? "numeric" : undefined}>
                {c.render ? c.render(row) : row[c.key]}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const FormState = createContext({ error: null, busy: false });

/**
 * A form whose `action(values)` (values by field name) runs once at a time: its button shows
 * progress, an error naming a field is shown at that field, any other in a banner.
 * `action` may return a message to announce on success.
 */
export function Form({ action, submit, label, children }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const onSubmit = async (event) => {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget; // gone from the event once the action has awaited
    const values = Object.fromEntries(new FormData(form));
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      setDone((await action(values)) ?? null);
    } catch (thrown) {
      // A field this form does not have (the seller's `feed_id`, say): the banner says it.
      const here = !thrown?.field || form.elements.namedItem(thrown.field) !== null;
      setError(here ? thrown : new ApiError(thrown.status, thrown.code, thrown.message));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={onSubmit} aria-label={label} noValidate>
      <FormState.Provider value={{ error, busy }}>
        {children}
        {error && !error.field ? <ErrorBanner error={error} /> : null}
        <SubmitButton busy={busy}>{submit}</SubmitButton>
        <p class="done" role="status">
          {done}
        </p>
      </FormState.Provider>
    </form>
  );
}

export function SubmitButton({ busy, children }) {
  return (
    <button type="submit" disabled={busy} aria-busy={busy ? "true" : undefined}>
      {busy ? `${children}…` : children}
    </button>
  );
}

/** A labelled input; the form's error for its `name` shown beside it. */
export function Field({ label, name, hint, type = "text", ...input }) {
  const id = useId();
  const { error } = useContext(FormState);
  const mine = error && error.field === name ? error : null;
  const described = [hint ? `${id}-hint` : null, mine ? `${id}-error` : null].filter(Boolean).join(" ");
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input
        id={id}
        name={name}
        type={type}
        aria-invalid={mine ? "true" : undefined}
        aria-describedby={described || undefined}
        {...input}
      />
      {hint ? (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
      {mine ? (
        <small id={`${id}-error`} class="field-error" role="alert">
          {mine.message}
        </small>
      ) : null}
    </div>
  );
}

/** A labelled select of `options` ([{value, label}]); the form's error for its `name` beside it. */
export function Select({ label, name, options, ...select }) {
  const id = useId();
  const { error } = useContext(FormState);
  const mine = error && error.field === name ? error : null;
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <select
        id={id}
        name={name}
        aria-invalid={mine ? "true" : undefined}
        aria-describedby={mine ? `${id}-error` : undefined}
        {...select}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {mine ? (
        <small id={`${id}-error`} class="field-error" role="alert">
          {mine.message}
        </small>
      ) : null}
    </div>
  );
}

/** A button that copies `text` to the clipboard and says so (or says to copy by hand). */
export function CopyButton({ text, label }) {
  const [said, setSaid] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setSaid("Copied");
    } catch {
      setSaid("Copy by hand: the browser refused the clipboard");
    }
  };
  return (
    <>
      <button type="button" class="small" onClick={copy} aria-label={label}>
        Copy
      </button>
      <span class="copied" role="status">
        {said}
      </span>
    </>
  );
}

/** Milliseconds since the epoch, read again every `everyMs` (for countdowns). */
export function useNow(everyMs = 1000) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** A 0x-hex id shortened for a table, the whole of it in its title and to copy. */
export function ShortId({ value }) {
  return (
    <code title={value}>
      {value.slice(0, 10)}…{value.slice(-6)}
    </code>
  );
}
