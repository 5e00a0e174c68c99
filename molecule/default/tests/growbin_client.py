"""A small synchronous client of the running Growbin platform, used as its users use it.

Every request goes over HTTPS through the edge and verifies the edge's certificate against the
CA the local platform generated: a test that skipped verification could not notice a broken
TLS setup. The client refuses any host but the loopback one, because the suites that use it
create accounts and inject faults and must never be pointed at a real deployment by mistake.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from skimage import data as sample_data

REPO = Path(__file__).resolve().parents[3]
DEFAULT_URL = "https://localhost:8443"
DEFAULT_HTTP_URL = "http://127.0.0.1:8080"
DEFAULT_CA = REPO / ".local" / "ca" / "growbin-local-ca.crt"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# Seoul City Hall: the seeded drop-off points are in Seoul.
SEOUL = (37.5663, 126.9779)
TERMINAL_SCAN_STATES = frozenset({"completed", "needs_clarification", "failed"})

REQUEST_SECONDS = 15.0
# Longer than the server's SSE keep-alive interval (15 s), so a quiet stream is not cut off.
STREAM_READ_SECONDS = 30.0


@dataclass(frozen=True)
class Endpoint:
    """Where the platform is and which CA signs its certificate (env, else the local defaults)."""

    url: str
    http_url: str
    ca_file: Path

    @classmethod
    def from_env(cls) -> Endpoint:
        return cls(
            url=os.environ.get("GROWBIN_E2E_URL", DEFAULT_URL).rstrip("/"),
            http_url=os.environ.get("GROWBIN_E2E_HTTP_URL", DEFAULT_HTTP_URL).rstrip("/"),
            ca_file=Path(os.environ.get("GROWBIN_E2E_CA", str(DEFAULT_CA))),
        )


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    content_type: str


class PlatformError(Exception):
    """The platform answered with a status the flow cannot continue from."""

    def __init__(self, what: str, response: httpx.Response) -> None:
        self.status_code = response.status_code
        super().__init__(f"{what}: HTTP {response.status_code} {response.text[:500]}")


@dataclass(frozen=True)
class EventStream:
    content_type: str
    events: list[SseEvent]

    @property
    def names(self) -> list[str]:
        return [e.event for e in self.events]


def require_loopback(url: str) -> None:
    host = httpx.URL(url).host
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"{url} is not on this machine; the e2e suites only talk to localhost")


@cache
def photo_of_a_cup() -> bytes:
    """A real JPEG photo: a coffee cup on a saucer (scikit-image's bundled sample).

    The offline classifier knows it (a ceramic dish, 불연성 쓰레기), so a scan of it ends
    ``completed`` with disposal steps; a drawn picture would only get ``needs_clarification``.
    """
    out = io.BytesIO()
    Image.fromarray(sample_data.coffee()).save(out, "JPEG", quality=90)
    return out.getvalue()


def random_credentials() -> tuple[str, str]:
    # Letters and digits so the password policy (mix, length, not common) always passes.
    return f"e2e-{secrets.token_hex(6)}@example.org", f"Growbin-{secrets.token_urlsafe(12)}-7"


def iter_sse(response: httpx.Response, deadline: float) -> Iterator[SseEvent]:
    """SSE events of a streaming response, until the server ends it or the deadline passes."""
    event, data_lines, event_id = "message", [], None
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise TimeoutError("the event stream did not end in time")
        if line == "":
            if data_lines:
                yield SseEvent(event, json.loads("\n".join(data_lines)), event_id)
            event, data_lines, event_id = "message", [], None
        elif line.startswith(":"):
            continue  # keep-alive comment
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data_lines.append(value)
            elif name == "id":
                event_id = value


def read_stream(
    http: httpx.Client, what: str, request: httpx.Request, within: float
) -> EventStream:
    """Every event of a stream the server ends by itself (both Growbin streams do), in time."""
    deadline = time.monotonic() + within
    request.extensions["timeout"] = httpx.Timeout(
        REQUEST_SECONDS, read=STREAM_READ_SECONDS
    ).as_dict()
    response = http.send(request, stream=True)
    try:
        if response.status_code != 200:
            response.read()
            raise PlatformError(what, response)
        return EventStream(
            content_type=response.headers.get("content-type", ""),
            events=list(iter_sse(response, deadline)),
        )
    finally:
        response.close()


class Platform:
    """Anonymous access: accounts, public data, and the raw HTTPS client."""

    def __init__(self, endpoint: Endpoint) -> None:
        require_loopback(endpoint.url)
        if not endpoint.ca_file.is_file():
            raise FileNotFoundError(f"no platform CA at {endpoint.ca_file} (is the platform up?)")
        self.endpoint = endpoint
        self.http = httpx.Client(
            base_url=endpoint.url,
            verify=ssl.create_default_context(cafile=str(endpoint.ca_file)),
            timeout=REQUEST_SECONDS,
        )

    def close(self) -> None:
        self.http.close()

    @contextmanager
    def recording(self) -> Iterator[list[Exchange]]:
        """Every response this client gets inside the block, also those a helper retried."""
        seen: list[Exchange] = []

        def record(response: httpx.Response) -> None:
            request = response.request
            seen.append(
                Exchange(
                    request.method,
                    request.url.path,
                    response.status_code,
                    response.headers.get("content-type", ""),
                )
            )

        self.http.event_hooks["response"].append(record)
        try:
            yield seen
        finally:
            self.http.event_hooks["response"].remove(record)

    def signup(self, email: str, password: str) -> httpx.Response:
        return self.http.post("/api/v1/auth/signup", json={"email": email, "password": password})

    def login(self, email: str, password: str) -> httpx.Response:
        return self.http.post("/api/v1/auth/login", json={"email": email, "password": password})

    def new_user(self) -> User:
        email, password = random_credentials()
        if (signed_up := self.signup(email, password)).status_code != 201:
            raise PlatformError("signup", signed_up)
        if (logged_in := self.login(email, password)).status_code != 200:
            raise PlatformError("login", logged_in)
        return User(self, email, logged_in.json()["access_token"])

    def nearby(self, lat: float, lon: float, radius_m: int = 5_000) -> httpx.Response:
        return self.http.get(
            "/api/v1/locations/nearby", params={"lat": lat, "lon": lon, "radius_m": radius_m}
        )


class User:
    """One signed-in user's side of the flow."""

    def __init__(self, platform: Platform, email: str, access_token: str) -> None:
        self.platform = platform
        self.email = email
        self.headers = {"Authorization": f"Bearer {access_token}"}

    def upload_photo(self, photo: bytes, idempotency_key: str | None = None) -> httpx.Response:
        # The local platform stores photos on its filesystem: no presigned S3 upload there,
        # the photo goes in the request itself.
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.platform.http.post(
            "/api/v1/scans",
            headers={**self.headers, **extra},
            files={"image": ("photo.jpg", photo, "image/jpeg")},
        )

    def follow_scan(self, scan_id: str, within: float = 120.0) -> EventStream:
        """Progress events of a scan, oldest first, up to the terminal one."""
        request = self.platform.http.build_request(
            "GET", f"/api/v1/scans/{scan_id}/events", headers=self.headers
        )
        return read_stream(self.platform.http, "scan events", request, within)

    def scan(self, scan_id: str) -> httpx.Response:
        return self.platform.http.get(f"/api/v1/scans/{scan_id}", headers=self.headers)

    def history(self, limit: int = 100) -> httpx.Response:
        return self.platform.http.get(
            "/api/v1/scans", params={"limit": limit}, headers=self.headers
        )

    def wait_for_scan(
        self, scan_id: str, until: frozenset[str] = TERMINAL_SCAN_STATES, within: float = 120.0
    ) -> dict[str, Any]:
        """The scan once its status is one of ``until`` or terminal, as GET /scans/{id} says.

        That is the database's view, which is what survives: the progress stream lives in
        Redis. 503 is tolerated while polling, because the fault drills poll through outages.
        """
        deadline = time.monotonic() + within
        while True:
            response = self.scan(scan_id)
            if response.status_code == 200:
                scan: dict[str, Any] = response.json()
                if scan["status"] in until | TERMINAL_SCAN_STATES:
                    return scan
            elif response.status_code != 503:
                raise PlatformError(f"scan {scan_id}", response)
            if time.monotonic() > deadline:
                raise TimeoutError(f"scan {scan_id} did not reach {sorted(until)} in {within} s")
            time.sleep(1.0)

    def start_conversation(self, title: str | None = None) -> httpx.Response:
        return self.platform.http.post(
            "/api/v1/chat/conversations",
            headers=self.headers,
            json={"title": title} if title else None,
        )

    def ask(
        self, conversation_id: str, question: str, scan_id: str | None = None, within: float = 60
    ) -> EventStream:
        """The streamed answer, read to its end."""
        body: dict[str, Any] = {"content": question}
        if scan_id:
            body["scan_id"] = scan_id
        request = self.platform.http.build_request(
            "POST",
            f"/api/v1/chat/conversations/{conversation_id}/messages",
            headers=self.headers,
            json=body,
        )
        return read_stream(self.platform.http, "chat answer", request, within)

    def messages(self, conversation_id: str) -> httpx.Response:
        return self.platform.http.get(
            f"/api/v1/chat/conversations/{conversation_id}/messages", headers=self.headers
        )

    def probes(self) -> dict[str, httpx.Response]:
        """One database-backed read per domain, through the edge.

        The services' own /health and /ready are not routed by the edge, and a process that
        answers /health can still fail every request after its database came back; a real
        read of each domain's data is what "the platform answers again" means to a user.
        """
        lat, lon = SEOUL
        paths = {
            "auth": "/api/v1/auth/me",
            "users": "/api/v1/users/me",
            "scans": "/api/v1/scans?limit=1",
            "recycling": "/api/v1/recycling/categories",
            "locations": f"/api/v1/locations/nearby?lat={lat}&lon={lon}",
            "chat": "/api/v1/chat/conversations",
        }
        results = {}
        for domain, path in paths.items():
            results[domain] = self.platform.http.get(path, headers=self.headers)
        return results

    def wait_until_serving(self, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                statuses = {d: r.status_code for d, r in self.probes().items()}
            except httpx.TransportError as exc:
                statuses = {"edge": repr(exc)}
            if all(status == 200 for status in statuses.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the platform is not serving after {within:.0f} s: {statuses}")
            time.sleep(1.0)
