// The hash router: `#/wallet`, `#/explorer/tx/0x…`. Paths are matched against the one
// routes table (routes.js); a hash that is not a path ("#main") is left alone.
import { useEffect, useState } from "preact/hooks";

function compile(pattern) {
  const names = [];
  const source = pattern
    .split("/")
    .map((part) => {
      if (!part.startsWith(":")) return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(part.slice(1));
      return "([^/]+)";
    })
    .join("/");
  return { regex: new RegExp(`^${source}/?$`), names };
}

const compiled = new WeakMap();

/** The route matching `path` and its decoded parameters, or null. */
export function match(routes, path) {
  for (const route of routes) {
    if (!compiled.has(route)) compiled.set(route, compile(route.path));
    const { regex, names } = compiled.get(route);
    const found = regex.exec(path);
    if (found) {
      const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(found[i + 1])]));
      return { route, params };
    }
  }
  return null;
}

/** The current location: its path and its query (`#/login?next=/wallet`). */
export function current() {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const [path, query = ""] = hash.split("?", 2);
  return { path, query: new URLSearchParams(query) };
}

export const href = (path) => `#${path}`;
export function navigate(path) {
  location.hash = path;
}

/** The current location, re-rendered on every navigation. */
export function useLocation() {
  const [where, setWhere] = useState(current);
  useEffect(() => {
    const changed = () => {
      if (location.hash === "" || location.hash.startsWith("#/")) setWhere(current());
    };
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return where;
}
