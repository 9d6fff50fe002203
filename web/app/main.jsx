// The shell: skip link, header with the nav built from the routes table, <main> with the
// current page. On each navigation the document title changes and focus moves to the
// page's heading, so a screen reader announces the new page.
import "uplot/dist/uPlot.min.css";
import "./app.css";
import { render } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { nodeInfo, onAuthLost, token } from "./api.js";
import { SearchBox } from "./explorer_kit.jsx";
import { href, match, navigate, useLocation } from "./router.js";
import { navGroups, notFound, routes } from "./routes.js";
import { PageReady } from "./ui.jsx";

function Nav({ path, loggedIn }) {
  const listed = routes.filter((r) => r.nav !== false && !r.path.includes(":"));
  return (
    <nav aria-label="Main">
      <ul>
        {navGroups.map((group) => (
          <li key={group} class="nav-group">
            <span class="nav-group-name" id={`nav-${group}`}>
              {group}
            </span>
            <ul aria-labelledby={`nav-${group}`}>
              {listed
                .filter((r) => r.group === group)
                .map((r) => (
                  <li key={r.path}>
                    <a href={href(r.path)} aria-current={r.path === path ? "page" : undefined}>
                      {r.title}
                    </a>
                  </li>
                ))}
            </ul>
          </li>
        ))}
        <li>
          {loggedIn ? (
            <button type="button" class="link" onClick={logout}>
              Log out
            </button>
          ) : (
            <a href={href("/login")} aria-current={path === "/login" ? "page" : undefined}>
              Log in
            </a>
          )}
        </li>
      </ul>
    </nav>
  );
}

function logout() {
  token.clear();
  navigate("/login");
}

function App() {
  const { path, query } = useLocation();
  const [loggedIn, setLoggedIn] = useState(token.get() !== null);
  // Whether the node lets reads through without the token (null: not yet known).
  const [publicReads, setPublicReads] = useState(null);
  // The path whose page said its content is shown: <main data-ready> for tests and the bench.
  const [readyAt, setReadyAt] = useState(null);
  const main = useRef(null);
  const first = useRef(true);
  const found = match(routes, path);
  const route = found?.route ?? notFound;
  // A reading page waits for /v1/info to say whether reads are public before it guards.
  const deciding = route.auth === "read" && !loggedIn && publicReads === null;
  const blocked = !loggedIn && (route.auth === true || (route.auth === "read" && publicReads === false));

  useEffect(
    () =>
      onAuthLost(() => {
        setLoggedIn(false);
      }),
    [],
  );
  // Asked only when it decides something: a logged-in page's own reads go first.
  const wantsInfo = route.auth === "read" && !loggedIn && publicReads === null;
  useEffect(() => {
    if (!wantsInfo) return;
    nodeInfo().then(
      (info) => setPublicReads(info.public_reads === true),
      () => setPublicReads(false), // no answer: guard as if reads need the token
    );
  }, [wantsInfo]);
  // A page that needs the token, without it: the login page, which comes back here.
  useEffect(() => {
    if (blocked) navigate(`/login?next=${encodeURIComponent(path)}`);
  }, [blocked, path]);
  useEffect(() => {
    document.title = `${route.title} · m2mpay node`;
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.querySelector("h1")?.focus();
  }, [path]);

  const markReady = useCallback(() => setReadyAt(path), [path]);
  const Page = blocked || deciding ? null : route.page;
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(event) => {
          event.preventDefault(); // "#main" is not a route: focus the content instead
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header>
        <p class="brand">m2mpay node</p>
        <Nav path={path} loggedIn={loggedIn} />
        <SearchBox />
      </header>
      <main id="main" ref={main} tabIndex={-1} data-ready={readyAt === path ? path : undefined}>
        <PageReady.Provider value={markReady}>
          {Page ? (
            <Page
              key={path}
              params={found?.params ?? {}}
              query={query}
              onLogin={() => setLoggedIn(true)}
            />
          ) : blocked || deciding ? (
            <p role="status">{deciding ? "Asking the node whether reads are public…" : "This page needs the node's API token…"}</p>
          ) : (
            <NotFound path={path} />
          )}
        </PageReady.Provider>
      </main>
    </>
  );
}

function NotFound({ path }) {
  return (
    <>
      <h1 tabIndex={-1}>Not found</h1>
      <p>
        No page at <code>{path}</code>. <a href={href("/")}>Go to the overview</a>.
      </p>
    </>
  );
}

// The page's "Loading…" placeholder goes: Preact adds to a container, it does not replace.
const root = document.getElementById("app");
root.replaceChildren();
render(<App />, root);
