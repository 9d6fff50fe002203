"""Every error the issue names, met as a newcomer meets it against a real node: one or
two lines naming the problem and the fix, a traceback only with `--debug`."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from m2mpay.bench.daemons import NodeProcess
from m2mpay.cli.explain import NodeTarget, explain
from m2mpay.errors import ApiInvalidInput
from tests.cli.conftest import cli, m2mpay, made_key


def _said(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return stderr


def test_a_missing_token_says_where_to_give_it_and_how_to_get_a_new_one(
    running_node: NodeProcess,
) -> None:
    result = cli("wallet", "show", "--url", running_node.url)
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert f"the node at {running_node.url} needs its API token" in said
    for fix in ("--token", "$M2MPAY_TOKEN", "--new-token", "api-token.sha256"):
        assert fix in said


def test_a_wrong_token_is_named_as_such(running_node: NodeProcess) -> None:
    result = cli("wallet", "show", "--url", running_node.url, M2MPAY_TOKEN="m2m_guess")
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert "refused the API token given" in said
    assert "m2mpay node --new-token" in said
    # Programs keep the API's error object.
    as_json = cli("wallet", "show", "--json", "--url", running_node.url, M2MPAY_TOKEN="x")
    assert as_json.stderr.strip() == (
        '{"error": {"status": 401, "code": "unauthorized", '
        '"message": "the bearer token is not valid"}}'
    )


def test_a_url_ending_in_v1_is_given_back_without_it(running_node: NodeProcess) -> None:
    token = running_node.ready["api_token"]
    result = cli("wallet", "show", "--url", running_node.url + "/v1/", M2MPAY_TOKEN=token)
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert "ends in /v1" in said
    assert f"use --url {running_node.url}\n" in said


def test_the_chains_json_rpc_port_is_named_for_what_it_is(running_node: NodeProcess) -> None:
    rpc = (running_node.data_dir / "chain.rpc").read_text().strip()
    result = cli("channel", "list", "--url", rpc, M2MPAY_TOKEN="t")
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert f"{rpc} is a chain's JSON-RPC endpoint (chain id 1337)" in said
    assert "the API address `m2mpay node` prints" in said


def test_a_short_address_says_what_an_address_is(running_node: NodeProcess) -> None:
    token = running_node.ready["api_token"]
    result = cli("wallet", "transfer", "0x1234", "5", "--url", running_node.url,
                 M2MPAY_TOKEN=token)  # fmt: skip
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert "`to` is not an address" in said
    assert "0x and 40 hex digits" in said
    assert "pattern" not in said  # no raw regex


def test_a_port_in_use_is_refused_before_starting_with_the_fix(
    running_node: NodeProcess, tmp_path: Path
) -> None:
    taken = urlsplit(running_node.url).port
    assert taken is not None
    done = m2mpay("node", "--data-dir", str(tmp_path / "other"), "--port", str(taken))
    assert done.returncode == 1
    said = _said(done.stderr)
    assert f"port {taken} on 127.0.0.1 (--port) is already in use" in said
    assert "--port 0 for any free one" in said
    assert not (tmp_path / "other" / "keystore").exists()  # refused before making a key


def test_a_watcher_on_a_port_in_use_is_refused_the_same_way(tmp_path: Path) -> None:
    assert cli("ledger", "deploy", "--data-dir", str(tmp_path)).exit_code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = m2mpay("watcher", "serve", "--data-dir", str(tmp_path), "--port", str(port))
    assert done.returncode == 1
    said = _said(done.stderr)
    assert f"port {port} on 127.0.0.1 (--port) is already in use" in said


def test_a_wrong_passphrase_is_two_lines_and_the_traceback_only_with_debug(
    tmp_path: Path,
) -> None:
    keystore = made_key(tmp_path / "node")["keystore"]
    done = m2mpay("node", "--data-dir", str(tmp_path / "node"), "--port", "0",
                  passphrase="a wrong guess")  # fmt: skip
    assert done.returncode == 1
    said = _said(done.stderr)
    assert f"wrong passphrase for the keystore {keystore}" in said
    assert "$M2MPAY_PASSPHRASE, --passphrase-file or the prompt" in said

    debug = m2mpay("--debug", "node", "--data-dir", str(tmp_path / "node"), "--port", "0",
                   passphrase="a wrong guess")  # fmt: skip
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "WrongPassphrase" in debug.stderr
    assert "a wrong guess" not in debug.stderr  # the frames' variables are not shown


def test_an_unexpected_error_asks_for_debug_and_a_report() -> None:
    said = explain(ZeroDivisionError("division by zero"))
    assert said.problem == "unexpected ZeroDivisionError: division by zero"
    assert said.fix is not None
    assert "m2mpay --debug" in said.fix


def test_a_node_not_running_is_asked_about_with_the_url_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = cli("channel", "list", "--url", nowhere)
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert f"cannot reach the node at {nowhere}" in said
    assert "is `m2mpay node` running?" in said


class _NotANode(http.server.BaseHTTPRequestHandler):
    """Some other web server: a page for every request, 404."""

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html>nothing here</html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass  # not on the stderr the test reads


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, *args: object) -> None:
        pass  # a client that hangs up early is not the test's business


def test_another_web_server_is_not_taken_for_a_node() -> None:
    server = _QuietServer(("127.0.0.1", 0), _NotANode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = cli("wallet", "show", "--url", url, M2MPAY_TOKEN="t")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    said = _said(result.stderr)
    assert f"{url} answered 404, not as an m2mpay node" in said
    assert "the API address `m2mpay node` prints" in said


def test_a_malformed_id_says_what_an_id_is() -> None:
    refusal = ApiInvalidInput(
        422, "invalid_input", "String should match pattern '^0[xX][0-9a-fA-F]{64}$'", "channel_id"
    )
    said = explain(refusal, NodeTarget("http://127.0.0.1:8402", "t"))
    assert said.problem == "invalid_input: `channel_id` is not 0x and 64 hex digits"
    assert said.fix is not None
    assert "unique prefix" in said.fix
