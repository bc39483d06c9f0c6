"""One WebSocket session on Trio: the thin adapter around :class:`SessionProtocol`.

Each connection is one nursery with four tasks:

* *receive*: socket -> protocol -> work channel (audio, audioend, the welcome);
* *recognize*: work channel -> engine in a worker thread -> protocol -> outbox;
* *send*: outbox -> socket, and the close;
* *heartbeat*: pings, and the inactivity timeout.

Both channels are bounded, so a client that sends faster than the engine
decodes is slowed down at the socket instead of filling memory, and a client
that does not read its results stops its own decoding.  Whichever task ends the
session cancels the nursery; the recognizer is released on every way out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import trio
from quart import Websocket

from stt import protocol
from stt.engines.base import Recognizer
from stt.errors import (
    AsrEngineError,
    AuthenticationFailed,
    ChunkProcessorError,
    InternalError,
    SttError,
)
from stt.service import SpeechService
from stt.session import (
    Action,
    Close,
    Decode,
    EndOfAudio,
    OpenRecognizer,
    Phase,
    Send,
    SessionProtocol,
)

log = logging.getLogger(__name__)

#: Work items (audio frames, audioend) queued ahead of the engine per session.
WORK_QUEUE_SIZE = 64
#: Messages queued for a client that reads slowly.
OUTBOX_SIZE = 64
#: Queued frames are joined up to this size for one engine call (about 2 s at 16 kHz).
MAX_DECODE_BYTES = 64 * 1024

Work = OpenRecognizer | Decode | EndOfAudio
Outgoing = Mapping[str, Any] | Close


class Connection:
    def __init__(self, websocket: Websocket, service: SpeechService, session_id: str) -> None:
        self._websocket = websocket
        self._service = service
        self._session_id = session_id
        self._protocol = SessionProtocol(
            service.ids, timeout_s=service.settings.server.timeout_s, now=trio.current_time()
        )
        self._work_in, self._work_out = trio.open_memory_channel[Work](WORK_QUEUE_SIZE)
        self._outbox_in, self._outbox_out = trio.open_memory_channel[Outgoing](OUTBOX_SIZE)
        self._recognizer: Recognizer | None = None
        self._lookahead: Work | None = None

    async def run(self) -> None:
        await self._websocket.accept()
        log.info("session %s opened", self._session_id)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                nursery.start_soon(self._guarded, self._receive_loop)
                nursery.start_soon(self._guarded, self._recognize_loop)
                nursery.start_soon(self._guarded, self._heartbeat_loop)
                nursery.start_soon(self._send_loop)
        finally:
            with trio.CancelScope(shielded=True):
                await self._release_recognizer()
            log.info("session %s closed", self._session_id)

    async def _guarded(self, loop: Any) -> None:
        """Turn a bug in one task into an error message and a close, not a dropped socket."""
        try:
            await loop()
        except Exception as error:
            log.exception("session %s failed", self._session_id)
            await self._carry_out(self._protocol.fail(InternalError(f"Server error: {error}")))

    async def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                await self._outbox_in.send(action.message)
            elif isinstance(action, Close):
                await self._outbox_in.send(action)
            else:
                await self._work_in.send(action)

    # -- tasks -----------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            data = await self._websocket.receive()
            now = trio.current_time()
            if isinstance(data, str):
                await self._carry_out(self._protocol.receive_text(data, now))
            elif data:  # Quart-Trio hands an empty binary frame over as None
                await self._carry_out(self._protocol.receive_bytes(data, now))

    async def _recognize_loop(self) -> None:
        while self._protocol.phase is not Phase.CLOSED:
            work = await self._next_work()
            try:
                if isinstance(work, OpenRecognizer):
                    actions = await self._open(work)
                elif isinstance(work, Decode):
                    actions = await self._decode(work.pcm)
                else:
                    actions = await self._end_audio(work.msg_id)
            except SttError as error:
                actions = self._protocol.fail(error)
            await self._carry_out(actions)

    async def _send_loop(self) -> None:
        async for outgoing in self._outbox_out:
            if isinstance(outgoing, Close):
                await self._websocket.close(outgoing.code, outgoing.reason)
                self._cancel_scope.cancel()
                return
            await self._websocket.send(protocol.encode(outgoing))

    async def _heartbeat_loop(self) -> None:
        interval = self._service.settings.server.heartbeat_s
        while True:
            await trio.sleep(interval)
            await self._carry_out(self._protocol.heartbeat(trio.current_time()))

    # -- recognizer ---------------------------------------------------------------

    async def _next_work(self) -> Work:
        """The next work item; queued audio frames are joined into one engine call."""
        work = self._lookahead or await self._work_out.receive()
        self._lookahead = None
        if not isinstance(work, Decode):
            return work
        chunks = [work.pcm]
        size = len(work.pcm)
        while size < MAX_DECODE_BYTES:
            try:
                following = self._work_out.receive_nowait()
            except trio.WouldBlock:
                break
            if not isinstance(following, Decode):
                self._lookahead = following
                break
            chunks.append(following.pcm)
            size += len(following.pcm)
        return Decode(b"".join(chunks)) if len(chunks) > 1 else work

    async def _open(self, request: OpenRecognizer) -> list[Action]:
        service = self._service
        welcome = request.welcome
        if not service.authenticator.check(welcome.client_id, welcome.access_token):
            log.warning(
                "session %s: authentication failed for %r", self._session_id, welcome.client_id
            )
            await trio.sleep(service.settings.server.auth_failure_delay_s)
            raise AuthenticationFailed("Authentication failed: wrong client id or token.")
        plan = service.plan_session(request.options)
        try:
            self._recognizer = await trio.to_thread.run_sync(
                plan.model.create_recognizer, plan.recognition
            )
        except Exception as error:
            log.exception("session %s: recognizer failed", self._session_id)
            raise ChunkProcessorError(f"Failed to create processor: {error}") from error
        log.info("session %s: options %s", self._session_id, plan.info["options"])
        return self._protocol.recognizer_opened(request, plan.info, plan.effective)

    async def _decode(self, pcm: bytes) -> list[Action]:
        recognizer = self._opened_recognizer()
        hypotheses = await self._in_thread(recognizer.accept_audio, pcm)
        return self._protocol.results(hypotheses)

    async def _end_audio(self, msg_id: int) -> list[Action]:
        recognizer = self._opened_recognizer()
        last = await self._in_thread(recognizer.finish)
        return self._protocol.audio_ended(msg_id, last)

    def _opened_recognizer(self) -> Recognizer:
        assert self._recognizer is not None, "audio before the recognizer was opened"
        return self._recognizer

    async def _in_thread(self, call: Any, *args: Any) -> Any:
        """An engine call in a worker thread, within the server's decode limit."""
        try:
            return await trio.to_thread.run_sync(call, *args, limiter=self._service.decode_limiter)
        except Exception as error:
            log.exception("session %s: engine failed", self._session_id)
            raise AsrEngineError(f"{type(error).__name__}: {error}") from error

    async def _release_recognizer(self) -> None:
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is not None:
            await trio.to_thread.run_sync(recognizer.close)
