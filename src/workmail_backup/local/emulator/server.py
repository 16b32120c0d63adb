"""The emulator on the wire: WorkMail's JSON 1.1 protocol over HTTP on the loopback interface.

An unchanged boto3 client reaches it with ``endpoint_url`` (or ``AWS_ENDPOINT_URL_WORKMAIL``):
POST / with ``X-Amz-Target: WorkMailService.<Operation>`` and a JSON body; errors come
back as HTTP 4xx/5xx with ``{"__type": ..., "Message": ...}`` and ``x-amzn-ErrorType``, which
botocore turns into a ClientError with that code.
"""

import json
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ServiceError
from .organization import ExportJob
from .scenario import Scenario
from .service import WorkMailService

_TARGET_PREFIX = "WorkMailService."
_CONTENT_TYPE = "application/x-amz-json-1.1"


class WorkMailEmulator:
    """A WorkMail endpoint over a scenario, driven by an injected clock.

    The emulator never reads the system clock: every answer depends on ``now()`` alone.
    """

    def __init__(self, scenario: Scenario, now: Callable[[], datetime]):
        self.scenario = scenario
        self.service = WorkMailService(scenario, now)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint URL, once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Serve on 127.0.0.1 on a free port, in daemon threads; return the endpoint URL."""
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.service))
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, name="workmail-emulator", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "WorkMailEmulator":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def peak_running(self, organization_id: str) -> int:
        """The most export jobs running at once in the organization, scenario jobs included."""
        return self.service.peak_running(organization_id)

    def limit_exceeded_count(self, organization_id: str) -> int:
        """How many LimitExceededException responses the organization's requests got."""
        return self.service.limit_exceeded_count(organization_id)

    def request_counts(self, organization_id: str) -> dict[str, int]:
        """How many requests of each operation the organization received."""
        return self.service.request_counts(organization_id)

    def jobs(self, organization_id: str) -> list[ExportJob]:
        """Every export job started so far in the organization, with its state at the current time."""
        return self.service.jobs(organization_id)


def _handler_for(service: WorkMailService) -> type[BaseHTTPRequestHandler]:
    class WorkMailRequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one write; with TCP_NODELAY no response waits on a delayed ACK.
        wbufsize = -1

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
            status, body, error_code = _answer(service, self.headers.get("X-Amz-Target", ""), self._body())
            self._respond(status, body, error_code)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _respond(self, status: int, body: dict[str, Any], error_code: str | None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", _CONTENT_TYPE)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            if error_code:
                self.send_header("x-amzn-ErrorType", error_code)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server uses
            # Quiet: a night of polling would otherwise print one line per request.
            return

    return WorkMailRequestHandler


def _answer(service: WorkMailService, target: str, raw: bytes) -> tuple[int, dict[str, Any], str | None]:
    """Turn one request into (HTTP status, JSON body, error code or None)."""
    try:
        operation = _operation(target)
        params = _params(raw)
        return 200, service.handle(operation, params), None
    except ServiceError as error:
        return error.status, {"__type": error.code, "Message": error.message}, error.code
    except Exception as error:  # noqa: BLE001 - a bug must reach the client as a 500, not a dropped connection
        message = f"The WorkMail emulator failed: {type(error).__name__}: {error}"
        return 500, {"__type": "InternalFailure", "Message": message}, "InternalFailure"


def _operation(target: str) -> str:
    if not target.startswith(_TARGET_PREFIX):
        raise ServiceError(
            "UnknownOperationException", f"X-Amz-Target must be {_TARGET_PREFIX}<Operation>, got {target!r}."
        )
    return target[len(_TARGET_PREFIX) :]


def _params(raw: bytes) -> dict[str, Any]:
    try:
        params = json.loads(raw or b"{}")
    except ValueError:
        raise ServiceError("SerializationException", "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise ServiceError("SerializationException", "The request body must be a JSON object.")
    return params
