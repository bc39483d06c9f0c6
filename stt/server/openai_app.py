"""OpenAI's transcription API on the main port, as an ASGI layer in front of the Quart app.

``POST /v1/audio/transcriptions`` is served here rather than by Quart because an
upload must not be read before the request is authenticated and given a place
(``[files] max_jobs``), and then only into a temporary file: Quart reads every
request body into memory as it arrives.  ``GET /v1/models`` lives here too, beside
it.  The rules (fields, errors, events) are ``stt.openai.api``; the transcription is
a :class:`~stt.server.file_jobs.FileJob` sharing the engine with live streams.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl

import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

from stt.errors import FileTooLarge, InternalError, SttError
from stt.files.formats import MEDIA_TYPES, render
from stt.files.transcript import Segment, Transcript
from stt.openai.api import (
    TranscriptionRequest,
    error_event,
    error_response,
    models_list,
    parse_fields,
    text_delta,
    text_done,
)
from stt.server.auth import request_credentials
from stt.server.file_jobs import FileJob, plan_file
from stt.server.middleware import DRAIN_BYTES, DRAIN_S, RETRY_AFTER_S, address_of
from stt.server.service import SpeechService
from stt.server.uploads import ClientGone, boundary_of, receive_upload

log = logging.getLogger(__name__)

TRANSCRIPTIONS = "/v1/audio/transcriptions"
MODELS = "/v1/models"
JSON = "application/json"
Headers = list[tuple[bytes, bytes]]


class OpenAiApi:
    """Serves OpenAI's paths; hands every other request to ``app``."""

    def __init__(self, app: ASGIFramework, service: SpeechService) -> None:
        self._app = app
        self._service = service
        self._started = int(time.time())

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        http = scope
        route = (http["method"], http["path"])
        if route == ("POST", TRANSCRIPTIONS) and self._service.settings.files.enabled:
            await _Exchange(self._service, http, receive, send).transcribe()
        elif route == ("GET", MODELS):
            await _Exchange(self._service, http, receive, send).models(self._started)
        else:
            await self._app(scope, receive, send)


class _Exchange:
    """One request and its response."""

    def __init__(
        self,
        service: SpeechService,
        scope: HTTPScope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
    ) -> None:
        self._service = service
        self._scope = scope
        self._receive = receive
        self._send = send
        self._headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        self._address = address_of(scope, service.settings.server.trusted_proxies)
        self._body_read = False
        self._response_started = False

    async def models(self, created: int) -> None:
        try:
            await self._authenticate()
        except SttError as error:
            await self._fail(error)
            return
        body = json.dumps(models_list(self._service.settings.models, created)).encode()
        await self._respond(200, body, JSON)

    async def transcribe(self) -> None:
        try:
            await self._authenticate()
            max_bytes = int(self._service.settings.files.max_upload_mb * 1e6)
            declared = self._headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FileTooLarge(
                    f"The upload of {int(declared) / 1e6:.1f} MB is larger than this server's "
                    f"limit of {max_bytes / 1e6:g} MB."
                )
            boundary = boundary_of(self._headers)
            self._service.start_file_job()
            try:
                await self._transcribe_upload(boundary, max_bytes)
            finally:
                self._service.end_file_job()
        except ClientGone:
            self._service.metrics.file_jobs_finished.labels("client gone").inc()
        except SttError as error:
            self._service.metrics.file_jobs_finished.labels(error.name).inc()
            await self._fail(error)
        except Exception:
            log.exception("transcription from %s failed", self._address)
            self._service.metrics.file_jobs_finished.labels(InternalError.name).inc()
            await self._fail(InternalError("Server error while transcribing the file."))

    async def _transcribe_upload(self, boundary: bytes, max_bytes: int) -> None:
        with tempfile.TemporaryDirectory(prefix="sepia-stt-upload-") as folder:
            upload = await receive_upload(self._receive, boundary, Path(folder), max_bytes)
            self._body_read = True
            request = parse_fields(upload.fields)
            plan = plan_file(self._service, request.model, request.language, request.prompt)
            assert upload.path is not None
            job = await FileJob.open(self._service, plan, upload.path)
            log.info(
                "%s from %s: %r (%d bytes), %s, %s",
                job.job_id,
                self._address,
                upload.filename,
                upload.path.stat().st_size,
                plan.model.spec.name,
                request.response_format + (" streamed" if request.stream else ""),
            )
            try:
                transcript = await self._until_client_leaves(job, request)
            finally:
                job.close()
        self._service.metrics.file_jobs_finished.labels("completed").inc()
        log.info("%s: %.1f s of audio transcribed", job.job_id, transcript.duration_s)
        if not request.stream:
            body = render(transcript, request.response_format, request.granularities).encode()
            await self._respond(200, body, MEDIA_TYPES[request.response_format])

    async def _until_client_leaves(self, job: FileJob, request: TranscriptionRequest) -> Transcript:
        """Run the job; a client that disconnects meanwhile cancels it."""
        result: list[Transcript] = []
        failed: list[SttError] = []

        async def run(nursery: trio.Nursery) -> None:
            # Its error is raised as itself below, not inside the nursery's exception group.
            try:
                result.append(await (self._stream(job) if request.stream else job.run()))
            except SttError as error:
                failed.append(error)
            nursery.cancel_scope.cancel()

        async def watch(nursery: trio.Nursery) -> None:
            while (await self._receive())["type"] != "http.disconnect":
                pass
            log.info("%s: the client left, the job is stopped", job.job_id)
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, nursery)
            nursery.start_soon(watch, nursery)
        if failed:
            raise failed[0]
        if not result:
            raise ClientGone
        return result[0]

    async def _stream(self, job: FileJob) -> Transcript:
        """Server-sent events: a text delta per utterance, then the whole text."""
        await self._start(
            200, "text/event-stream; charset=utf-8", [(b"cache-control", b"no-cache")]
        )
        said: list[str] = []

        async def on_segments(segments: list[Segment]) -> None:
            for segment in segments:
                await self._body(text_delta((" " if said else "") + segment.text))
                said.append(segment.text)

        transcript = await job.run(on_segments)
        await self._body(text_done(transcript.text), more=False)
        return transcript

    # -- answers ------------------------------------------------------------------------

    async def _authenticate(self) -> None:
        query = dict(parse_qsl(self._scope["query_string"].decode("latin-1")))
        client_id, token = request_credentials(self._headers, query)
        await self._service.authenticate(client_id, token, self._address)

    async def _fail(self, error: SttError) -> None:
        if self._response_started:  # an event stream: the error is its last event
            await self._body(error_event(error), more=False)
            return
        status, body = error_response(error)
        headers: Headers = []
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="sepia-stt"'))
        if status in (429, 503):
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        if status >= 500:
            log.warning("transcription from %s failed: %s", self._address, error.message)
        if not self._body_read:
            await self._discard_body()
        await self._respond(status, json.dumps(body).encode(), JSON, headers)

    async def _discard_body(self) -> None:
        """Read a small unread body, so the client gets the answer and not a broken pipe;
        a large one is left, and the connection closed after the answer."""
        received = 0
        with trio.move_on_after(DRAIN_S):
            while received <= DRAIN_BYTES:
                message = await self._receive()
                if message["type"] != "http.request":
                    break
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break

    async def _respond(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Headers = (),  # type: ignore[assignment]
    ) -> None:
        await self._start(
            status, content_type, [*(headers or []), (b"content-length", str(len(body)).encode())]
        )
        await self._body(body, more=False)

    async def _start(self, status: int, content_type: str, headers: Headers) -> None:
        self._response_started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type.encode()), *headers],
                "trailers": False,
            }
        )

    async def _body(self, body: bytes, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": more})
