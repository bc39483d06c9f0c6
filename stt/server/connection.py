"""One WebSocket session on Trio: the thin adapter around a protocol's sans-IO session rules
(SEPIA's :class:`~stt.sepia.session.SessionProtocol`, vosk-server's dialect).

Each connection is one nursery with these tasks:

* *receive*: socket -> protocol -> work channel (audio, audioend, the welcome);
* *recognize*: work channel -> engine in a worker thread -> protocol -> outbox;
* *send*: outbox -> socket, and the close;
* *heartbeat* and *deadlines*: pings, inactivity and the session's time limits;
* *drain*: on server shutdown, lets a running stream finish, then closes.

The channels are bounded and queued audio is limited in bytes, so a client that
sends faster than the engine decodes is slowed down at the socket instead of
filling memory, and a client that does not read its results stops its own
decoding.  Whichever task ends the session cancels the nursery; the recognizer
is released on every way out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from stt.actions import (
    CLOSE_GOING_AWAY,
    Action,
    Close,
    Decode,
    EndOfAudio,
    OpenRecognizer,
    Send,
)
from stt.engines.base import Hypothesis
from stt.errors import SHUTTING_DOWN, InternalError, ServerBusy, SttError
from stt.server.admission import ANONYMOUS, Place
from stt.server.recognition import Recognition
from stt.server.service import SpeechService

log = logging.getLogger(__name__)

#: Work items (audio frames, audioend) queued ahead of the engine per session;
#: the byte budget (``max_buffered_audio_s``) is the bound that matters.
WORK_QUEUE_SIZE = 256
#: Messages queued for a client that reads slowly.
OUTBOX_SIZE = 64
#: Queued frames are joined up to this size for one engine call (about 2 s at 16 kHz).
MAX_DECODE_BYTES = 64 * 1024
#: How often session deadlines (welcome, idle, duration) are checked.
DEADLINE_CHECK_S = 0.5
#: The outcome (``sepia_stt_sessions_total``) of a session whose last final was sent.
COMPLETED = "completed"
#: Time allowed for the goodbye message when the server forces a session closed.
GOODBYE_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Reply:
    """Messages the receive side produced (errors), kept in order behind earlier work."""

    outgoing: tuple[Send | Close, ...]


Work = OpenRecognizer | Decode | EndOfAudio | Reply
#: What the send task takes at once: one action list, so nothing can come between
#: (say) the ``response`` and the final that follows it.
Batch = tuple[Send | Close, ...]


class ClientGone(Exception):
    """``MessageSocket.receive`` or ``send`` raises it when the client has gone.

    (Quart-Trio cancels a WebSocket's handler instead; a TCP protocol says it this way.)
    """


class MessageSocket(Protocol):
    """What a connection needs of its WebSocket.

    Quart's ``Websocket`` is one; the tests drive a connection in process through an
    in-memory one, with Trio's virtual clock.
    """

    async def accept(self) -> None: ...

    async def receive(self) -> str | bytes | None:
        """The next message; ``None`` for an empty binary frame (as Quart-Trio hands it over)."""
        ...

    async def send(self, data: str) -> None: ...

    async def close(self, code: int, reason: str = "") -> None: ...


class SessionRules(Protocol):
    """A protocol's session rules, sans-IO: what the client sent and what the engine produced
    go in, with the time; the actions to carry out come out (``stt.actions``)."""

    #: The protocol's name in logs and ``/metrics``.
    name: str

    @property
    def closed(self) -> bool: ...

    def wire(self, message: Mapping[str, Any]) -> str:
        """A message as it goes on the wire, encoded when it is sent."""
        ...

    def receive_text(self, text: str, now: float) -> list[Action]: ...

    def receive_bytes(self, data: bytes, now: float) -> list[Action]: ...

    def recognizer_opened(
        self, request: OpenRecognizer, info: Mapping[str, Any], effective: Mapping[str, Any]
    ) -> list[Action]: ...

    def results(self, hypotheses: list[Hypothesis], frames: int = 1) -> list[Action]: ...

    def audio_ended(self, msg_id: int, last: Hypothesis) -> list[Action]: ...

    def drain(self) -> list[Action]: ...

    def heartbeat(self, now: float) -> list[Action]: ...

    def expire(self, now: float) -> list[Action]: ...

    def fail(self, error: SttError) -> list[Action]: ...


class Connection:
    """Task wiring: the socket, the session rules, the channels and the recognition."""

    def __init__(
        self,
        websocket: MessageSocket,
        service: SpeechService,
        session_id: str,
        place: Place,
        rules: SessionRules,
    ) -> None:
        server = service.settings.server
        self._websocket = websocket
        self._service = service
        self._session_id = session_id
        #: Its place among pending connections, then sessions; freed as soon as the client
        #: has seen the end, before the recognizer is (that may wait for an engine thread).
        self._place = place
        self._protocol = rules
        self._work_in, self._work_out = trio.open_memory_channel[Work](WORK_QUEUE_SIZE)
        self._outbox_in, self._outbox_out = trio.open_memory_channel[Batch](OUTBOX_SIZE)
        self._recognition = Recognition(service, session_id)
        #: Seconds a send may take before the client counts as gone (it does not read).
        self._send_timeout_s = server.timeout_s
        self._lookahead: Work | None = None
        self._joined_frames = 1
        self._outcome = "client closed"
        self._closed = False
        #: Last words when the session is ended from outside the send task.
        self._goodbye: list[Action] = []

    async def run(self) -> None:
        await self._websocket.accept()
        log.info("session %s opened from %s", self._session_id, self._address)
        try:
            async with trio.open_nursery() as nursery:
                self._cancel_scope = nursery.cancel_scope
                for loop in (
                    self._receive_loop,
                    self._recognize_loop,
                    self._heartbeat_loop,
                    self._deadline_loop,
                    self._drain_loop,
                ):
                    nursery.start_soon(self._guarded, loop)
                nursery.start_soon(self._send_loop)
        finally:
            with trio.CancelScope(shield=True):
                if not self._closed and self._service.drain_started.is_set():
                    self._outcome = "shutdown"
                    self._goodbye = self._protocol.fail(ServerBusy(SHUTTING_DOWN))
                if self._goodbye and not self._closed:
                    await self._say_goodbye(self._goodbye)
                self._service.release(self._place)
                await self._recognition.release()
            self._service.metrics.sessions.labels(self._protocol.name, self._outcome).inc()
            log.info("session %s closed: %s", self._session_id, self._outcome)

    @property
    def _address(self) -> str:
        return self._place.address

    async def _guarded(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Turn a bug in one task into an error message and a close, not a dropped socket."""
        try:
            await loop()
        except Exception:
            log.exception("session %s failed", self._session_id)
            self._end_now(
                self._protocol.fail(InternalError(f"Server error in session {self._session_id}."))
            )

    def _end_now(self, actions: list[Action]) -> None:
        """End the session without waiting for queued messages (deadlines, failures)."""
        if actions:
            self._goodbye = actions
            self._outcome = next((a.reason for a in actions if isinstance(a, Close)), "ended")
            self._cancel_scope.cancel()

    async def _queue_work(self, actions: list[Action]) -> None:
        """What the client sent, in order: audio to decode, and replies behind earlier work."""
        for action in actions:
            if isinstance(action, Send | Close):
                await self._work_in.send(Reply((action,)))
                continue
            if isinstance(action, Decode):
                await self._recognition.budget.spend(len(action.pcm))
            await self._work_in.send(action)

    async def _queue_outgoing(self, actions: list[Action]) -> None:
        batch = tuple(a for a in actions if isinstance(a, Send | Close))
        if batch:
            await self._outbox_in.send(batch)

    async def _say_goodbye(self, actions: list[Action]) -> None:
        """Send the last messages and close, directly: the send task is gone."""
        with trio.move_on_after(GOODBYE_TIMEOUT_S):
            try:
                for action in actions:
                    if isinstance(action, Send):
                        await self._send(action)
                    elif isinstance(action, Close):
                        await self._websocket.close(action.code, action.reason)
            except Exception:  # the client may be gone already; nothing left to tell
                log.debug("session %s: goodbye not delivered", self._session_id)
        self._closed = True

    # -- tasks -----------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            try:
                data = await self._websocket.receive()
            except ClientGone:
                self._closed = True  # nothing can be said to a client that is gone
                self._cancel_scope.cancel()
                return
            now = trio.current_time()
            if isinstance(data, str):
                await self._queue_work(self._protocol.receive_text(data, now))
            elif data:  # Quart-Trio hands an empty binary frame over as None
                await self._queue_work(self._protocol.receive_bytes(data, now))

    async def _recognize_loop(self) -> None:
        while True:
            work = self._lookahead or await self._work_out.receive()
            self._lookahead = None
            if isinstance(work, Reply):
                await self._queue_outgoing(list(work.outgoing))
                continue
            if self._protocol.closed:
                continue  # the session is closing: its last messages may still be queued
            try:
                if isinstance(work, OpenRecognizer):
                    actions = await self._open(work)
                elif isinstance(work, Decode):
                    actions = await self._decode(work.pcm)
                else:
                    actions = await self._end_audio(work.msg_id)
            except SttError as error:
                actions = self._protocol.fail(error)
            await self._queue_outgoing(actions)
            if isinstance(work, EndOfAudio):
                if work.ends_session:
                    await self._finish()
                else:
                    await self._recognition.release()  # the next audio gets a fresh one

    async def _finish(self) -> None:
        """The last final is on its way and no audio may follow: the session has ended for its
        client, who may keep the socket open a while (SEPIA clients close it on the final).
        Its place and its recognizer are freed now, not when the socket closes."""
        self._service.release(self._place)
        await self._recognition.release()

    async def _send_loop(self) -> None:
        try:
            await self._send_batches()
        except ClientGone:
            self._closed = True  # nothing can be said to a client that is gone
            self._cancel_scope.cancel()

    async def _send_batches(self) -> None:
        async for batch in self._outbox_out:
            for outgoing in batch:
                with trio.move_on_after(self._send_timeout_s) as sending:
                    if isinstance(outgoing, Close):
                        await self._close(outgoing)
                        return
                    await self._send(outgoing)
                if sending.cancelled_caught:
                    log.warning("session %s: client stopped reading", self._session_id)
                    self._outcome = "client not reading"
                    self._cancel_scope.cancel()
                    return

    async def _send(self, send: Send) -> None:
        if send.error is not None:
            self._service.metrics.errors.labels(send.error).inc()
        if send.completes:
            self._outcome = COMPLETED
        await self._websocket.send(self._protocol.wire(send.message))

    async def _close(self, close: Close) -> None:
        self._closed = True
        # A close after the last final (vosk-server's after eof) keeps "completed".
        if close.code != CLOSE_GOING_AWAY and self._outcome != COMPLETED:
            self._outcome = close.reason
        await self._websocket.close(close.code, close.reason)
        self._cancel_scope.cancel()

    async def _heartbeat_loop(self) -> None:
        interval = self._service.settings.server.heartbeat_s
        while True:
            await trio.sleep(interval)
            actions = self._protocol.heartbeat(trio.current_time())
            if any(isinstance(a, Close) for a in actions):
                self._end_now(actions)
                return
            with contextlib.suppress(trio.WouldBlock):  # a client that does not read needs no ping
                self._outbox_in.send_nowait(tuple(a for a in actions if isinstance(a, Send)))

    async def _deadline_loop(self) -> None:
        while True:
            await trio.sleep(DEADLINE_CHECK_S)
            self._end_now(self._protocol.expire(trio.current_time()))

    async def _drain_loop(self) -> None:
        await self._service.drain_started.wait()
        # In order behind what is queued: a stream's final goes out before the close.
        await self._queue_outgoing(self._protocol.drain())

    # -- recognition --------------------------------------------------------------

    def _join_queued_audio(self, pcm: bytes) -> bytes:
        """``pcm`` and the audio frames queued behind it, up to one engine call's worth.

        Called once the engine slot is held, so a session that waited for the
        engine decodes everything that arrived meanwhile in one call, rather than
        spending its turn on the frame that was there when it started waiting.
        ``_joined_frames`` counts the frames, for rules that answer each one.
        """
        chunks = [pcm]
        size = len(pcm)
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
        self._joined_frames = len(chunks)
        return b"".join(chunks) if len(chunks) > 1 else pcm

    async def _open(self, request: OpenRecognizer) -> list[Action]:
        """The welcome: authenticate, choose the model, count the session, answer."""
        service = self._service
        if request.anonymous:
            identity = ANONYMOUS
        else:
            identity = await service.authenticate(
                request.client_id, request.access_token, self._place.address
            )
        plan = service.plan_session(request.options)
        service.admit(self._place, identity)
        self._recognition.start(plan)
        log.info("session %s: options %s", self._session_id, plan.info["options"])
        return self._protocol.recognizer_opened(request, plan.info, plan.effective)

    async def _decode(self, first: bytes) -> list[Action]:
        self._joined_frames = 1
        hypotheses = await self._recognition.decode(first, self._join_queued_audio)
        return self._protocol.results(hypotheses, self._joined_frames)

    async def _end_audio(self, msg_id: int) -> list[Action]:
        return self._protocol.audio_ended(msg_id, await self._recognition.finish())
