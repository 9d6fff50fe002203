// The node's event stream (/v1/events, Server-Sent Events), read with fetch and a
// ReadableStream so the bearer header can be sent (EventSource cannot send one). One
// connection, shared by every page that listens; reconnecting with backoff; closed when
// no page listens.
import { useEffect, useRef } from "preact/hooks";
import { token } from "./api.js";

const listeners = new Set();
let running = null; // the AbortController of the one connection
const FIRST_DELAY_MS = 500;
const LONGEST_DELAY_MS = 15_000;

/** `fn({event, data})` for each event; returns the unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn);
  if (running === null) {
    running = new AbortController();
    connect(running.signal);
  }
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0 && running !== null) {
      running.abort();
      running = null;
    }
  };
}

/** A page's listener for the shared stream, for as long as it is shown. */
export function useEvents(fn) {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => subscribe((event) => latest.current(event)), []);
}

function dispatch(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // a comment: the node's keep-alive
    const [field, ...rest] = line.split(":");
    const value = rest.join(":").replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return;
  let parsed;
  try {
    parsed = JSON.parse(data.join("\n"));
  } catch {
    return; // not the node's JSON: nothing a page could use
  }
  for (const fn of listeners) fn({ event, data: parsed });
}

async function connect(signal) {
  let delay = FIRST_DELAY_MS;
  while (!signal.aborted) {
    const bearer = token.get();
    try {
      const response = await fetch(new URL("/v1/events", location.origin), {
        headers: { Accept: "text/event-stream", ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) },
        credentials: "omit",
        cache: "no-store",
        signal,
      });
      if (response.ok && response.body) {
        delay = FIRST_DELAY_MS;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = (buffer + value).replaceAll("\r\n", "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      }
    } catch {
      // the node went away or the page stopped listening: try again below unless stopped
    }
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, LONGEST_DELAY_MS);
  }
}

const EVENT_SETTLE_MS = 300; // a burst of payments is one reload, not one per payment

/** `reload()` once a burst of the node's events that `wanted({event, data})` has settled. */
export function useReloadOn(wanted, reload) {
  const timer = useRef(null);
  useEvents((event) => {
    if (!wanted(event) || timer.current !== null) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      reload();
    }, EVENT_SETTLE_MS);
  });
  useEffect(() => () => clearTimeout(timer.current), []);
}
