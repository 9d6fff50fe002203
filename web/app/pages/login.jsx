// Log in: the node's API token (printed once by `m2mpay node` when it first starts), checked
// against the node before it is kept, in sessionStorage, for this browser session only.
import { ApiError, AuthError, api, nodeInfo, token } from "../api.js";
import { navigate } from "../router.js";
import { Field, Form, useReady } from "../ui.jsx";

/** Whether the node takes `candidate`: asked of a route that needs the token. */
async function check(candidate) {
  const { public_reads: publicReads } = await nodeInfo();
  if (!publicReads) {
    await api("/v1/wallet", { bearer: candidate });
    return;
  }
  // With public reads every read is open, so only a write tells: the node checks the token
  // before the body, and this empty body is refused (422) before anything could move.
  try {
    await api("/v1/wallet/transfers", { method: "POST", body: {}, bearer: candidate });
  } catch (error) {
    if (error instanceof AuthError || error.status !== 422) throw error;
  }
}

export function Login({ query, onLogin }) {
  useReady(true);
  const next = query.get("next");
  const action = async ({ token: candidate }) => {
    const typed = (candidate ?? "").trim();
    if (!typed) throw new ApiError(422, "invalid_input", "enter the node's API token", "token");
    try {
      await check(typed);
    } catch (error) {
      if (error instanceof AuthError) {
        throw new ApiError(401, error.code, "the node refused this token", "token");
      }
      throw error;
    }
    token.set(typed);
    onLogin();
    navigate(next?.startsWith("/") ? next : "/wallet");
    return "Logged in.";
  };
  return (
    <>
      <h1 tabIndex={-1}>Log in</h1>
      <p>
        Enter this node's API token, which <code>m2mpay node</code> printed when it first started.
        It is kept in this browser tab until you log out or close it, never stored beyond.
      </p>
      <Form action={action} submit="Log in" label="Log in">
        <Field label="API token" name="token" type="password" autocomplete="off" required />
      </Form>
    </>
  );
}
