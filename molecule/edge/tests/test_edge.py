"""The edge terminates TLS with the generated CA and routes like the production ALB."""

import json
import os
from pathlib import Path

import pytest

testinfra_hosts = ["ansible://edge"]

CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ca" / "growbin-local-ca.crt"


@pytest.fixture(scope="module")
def edge(host):
    host.check_output("mkdir -p /tmp/ca")
    # The CA stays on the controller; copy it in only for the client side of this test.
    pem = CA.read_text()
    host.check_output(f"printf '%s' '{pem}' > /tmp/ca/ca.crt")
    return host


def curl(host, *args):
    return host.run("curl -sS --cacert /tmp/ca/ca.crt " + " ".join(args))


def test_https_verifies_against_the_local_ca(edge):
    result = curl(
        edge, "-o /dev/null -w '%{http_code} %{ssl_verify_result}' https://localhost/health"
    )
    assert result.rc == 0, result.stderr
    assert result.stdout == "200 0"


def test_untrusted_without_the_ca(edge):
    result = edge.run("curl -sS -o /dev/null https://localhost/health")
    assert result.rc == 60  # peer certificate cannot be authenticated with known CA certificates


@pytest.mark.parametrize(
    ("path", "domain"), [("/api/v1/auth/login", "auth"), ("/api/v1/scans/abc", "scans")]
)
def test_routes_each_domain_to_its_node(edge, path, domain):
    body = json.loads(curl(edge, f"https://localhost{path}").stdout)
    assert body["domain"] == domain
    assert body["path"] == path
    assert body["request_id"]


def test_unknown_route_is_a_json_404(edge):
    result = curl(edge, "-w '\\n%{http_code}' https://localhost/api/v1/nothing")
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "404"
    assert json.loads(body)["error"]["code"] == "not_found"


def test_http_redirects_to_https(edge):
    out = edge.check_output(
        "curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://localhost/api/v1/auth/me"
    )
    assert out == "308 https://localhost/api/v1/auth/me"


def test_security_headers(edge):
    headers = curl(edge, "-D - -o /dev/null https://localhost/health").stdout.lower()
    assert "strict-transport-security: max-age=31536000" in headers
    assert "x-content-type-options: nosniff" in headers
    assert "x-frame-options: deny" in headers
    assert "server: nginx\r\n" in headers  # no version


def test_upload_size_limit(edge):
    edge.check_output("head -c 13000000 /dev/zero > /tmp/big.bin")
    status = curl(
        edge,
        "-o /dev/null -w '%{http_code}' --data-binary @/tmp/big.bin https://localhost/api/v1/scans/",
    ).stdout
    assert status == "413"


def test_event_streams_are_not_buffered(edge):
    # Three events a second apart must arrive a second apart, not all at the end.
    out = curl(
        edge,
        "-N https://localhost/api/v1/scans/abc/events | while read -r line; do "
        '[ -n "$line" ] && echo "$(date +%s.%N) $line"; done',
    ).stdout.splitlines()
    arrivals = [float(line.split()[0]) for line in out]
    assert len(arrivals) == 3
    assert arrivals[2] - arrivals[0] > 1.5
    assert arrivals[1] - arrivals[0] > 0.5
