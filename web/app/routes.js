// THE routes table: every page of the app, once. The nav, the router, the page title and
// the login guard read it. A new page: a component in pages/, a row here.
//   path   hash path, `:name` for a parameter (given to the page as `params.name`)
//   title  the page's title (document title and nav label)
//   page   the component
//   auth   true when the page needs the node's API token (the login page is shown instead);
//          "read" when it only reads: the token unless the node has public reads
//   nav    false to leave it out of the nav
//   group  the nav's group it is listed under (one of `navGroups`)
import { AddressPage, ChannelPage } from "./pages/explorer_address.jsx";
import { Block, Blocks, Transaction } from "./pages/explorer.jsx";
import { Channel } from "./pages/channel.jsx";
import { Channels } from "./pages/channels.jsx";
import { Dashboard } from "./pages/dashboard.jsx";
import { Data } from "./pages/data.jsx";
import { Disputes, Peers, Registry } from "./pages/network.jsx";
import { Exchange } from "./pages/exchange.jsx";
import { Home } from "./pages/home.jsx";
import { Login } from "./pages/login.jsx";
import { Receipt, Receipts } from "./pages/receipts.jsx";
import { Stream, Streams } from "./pages/streams.jsx";
import { Tokens } from "./pages/tokens.jsx";
import { Wallet } from "./pages/wallet.jsx";

// The nav's groups, in order: what one holds and does, buying and selling, what runs now,
// what the chain and the other machines show.
export const navGroups = ["Wallet", "Market", "Live", "Network"];

export const routes = [
  { path: "/", title: "Overview", page: Home, auth: false, group: "Wallet" },
  { path: "/wallet", title: "Wallet", page: Wallet, auth: true, group: "Wallet" },
  { path: "/channels", title: "Channels", page: Channels, auth: true, group: "Wallet" },
  { path: "/channels/:id", title: "Channel", page: Channel, auth: true, nav: false },
  { path: "/tokens", title: "Tokens", page: Tokens, auth: true, group: "Market" },
  { path: "/exchange", title: "Exchange", page: Exchange, auth: true, group: "Market" },
  { path: "/dashboard", title: "Dashboard", page: Dashboard, auth: true, group: "Live" },
  { path: "/data", title: "Data", page: Data, auth: true, group: "Market" },
  { path: "/receipts", title: "Receipts", page: Receipts, auth: true, group: "Wallet" },
  { path: "/receipts/:id", title: "Receipt", page: Receipt, auth: true, nav: false },
  // The listing and the reader link follow the token; one stream by id is public, but
  // its page asks for the reader link, which is the owner's.
  { path: "/streams", title: "Streams", page: Streams, auth: true, group: "Live" },
  { path: "/streams/:id", title: "Stream", page: Stream, auth: true, nav: false },
  { path: "/explorer", title: "Explorer", page: Blocks, auth: "read", group: "Network" },
  { path: "/explorer/block/:ref", title: "Block", page: Block, auth: "read" },
  { path: "/explorer/tx/:hash", title: "Transaction", page: Transaction, auth: "read" },
  { path: "/explorer/address/:address", title: "Address", page: AddressPage, auth: "read" },
  { path: "/explorer/channel/:id", title: "Channel", page: ChannelPage, auth: "read" },
  { path: "/registry", title: "Registry", page: Registry, auth: "read", group: "Network" },
  { path: "/peers", title: "Peers", page: Peers, auth: "read", group: "Network" },
  { path: "/disputes", title: "Disputes", page: Disputes, auth: "read", group: "Network" },
  { path: "/login", title: "Log in", page: Login, auth: false, nav: false },
];

export const notFound = { path: "", title: "Not found", page: null, auth: false, nav: false };
