// The assets a page offers and shows: the native coin, the deployment's token and every
// token the factory made, each with its symbol, decimals and (when asked) this node's
// balance. One reader, so every wallet page names and scales an amount the same way.
import { ApiError, AuthError, api, nodeInfo, parseAmount } from "./api.js";

export const NATIVE = "0x0000000000000000000000000000000000000000";
const same = (a, b) => a.toLowerCase() === b.toLowerCase();

/** The factory's tokens; none when the node has no market deployment (its own answer). */
async function factoryTokens() {
  try {
    return (await api("/v1/tokens")).tokens;
  } catch (error) {
    if (error instanceof AuthError) throw error;
    if (error.status === 503 || error.status === 404) return []; // no factory deployed
    throw error;
  }
}

/**
 * [{address, symbol, decimals, balance?}]: native first, then the deployment's token, then
 * the factory's tokens oldest first. With `balances`, each holds this node's balance as an
 * integer string, all read in one pass (a page shows them together or not at all).
 */
export async function loadAssets({ balances = false } = {}) {
  const [info, tokens, wallet] = await Promise.all([
    nodeInfo(),
    factoryTokens(),
    balances ? api("/v1/wallet") : null,
  ]);
  const assets = [
    { address: NATIVE, symbol: "ETH", decimals: 18 },
    { address: info.contracts.token, symbol: info.contracts.token_symbol, decimals: info.contracts.token_decimals },
  ];
  for (const t of tokens) {
    if (!assets.some((a) => same(a.address, t.address))) {
      assets.push({ address: t.address, symbol: t.symbol || t.name, decimals: t.decimals });
    }
  }
  if (balances) {
    const held = await Promise.all(
      assets.map(async (a) => {
        const listed = wallet.balances.find((b) => same(b.asset, a.address));
        if (listed) return listed.on_chain;
        return (await api(`/v1/tokens/${a.address}`)).balance;
      }),
    );
    assets.forEach((a, i) => {
      a.balance = held[i];
    });
  }
  return assets;
}

/** The asset at `address` among `assets`, or an unknown one shown raw (0 decimals). */
export function assetAt(assets, address) {
  return assets.find((a) => same(a.address, address)) ?? { address, symbol: address.slice(0, 10) + "…", decimals: 0 };
}

export const assetOptions = (assets) => assets.map((a) => ({ value: a.address, label: a.symbol }));

/** The integer string a person typed in the field `name` (in whole units), or the refusal
 *  shown at that field: never a float, never nothing sent as something. */
export function readAmount(text, decimals, name, { zero = false } = {}) {
  let raw;
  try {
    raw = parseAmount(text ?? "", decimals);
  } catch (error) {
    throw new ApiError(422, "invalid_input", error.message, name);
  }
  if (!zero && raw === "0") throw new ApiError(422, "invalid_input", "more than nothing", name);
  return raw;
}
