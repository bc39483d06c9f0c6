"""A multipart upload read from ASGI into a temporary file, within limits, as it arrives.

Nothing is read before the caller has authenticated the request and given it a
place, and then only as fast as the disk takes it: Hypercorn stops reading the
socket while the app does not ask for more, so an upload never sits in memory.
Form fields are small and few; the one file part goes to disk, counted against
``max_bytes`` as it comes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import trio
from hypercorn.typing import ASGIReceiveCallable
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from stt.errors import FileTooLarge, InvalidRequest

#: All form fields together (model, language, prompt, ...), and how many parts in all.
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 32
#: What the decoder may hold that is not yet a field or file data (part headers, a boundary).
MAX_PENDING_BYTES = 1 << 20
#: A client that sends nothing for this long during an upload is given up on (408).
IDLE_TIMEOUT_S = 30.0
#: The form field that carries the audio, as OpenAI names it.
FILE_FIELD = "file"


class ClientGone(Exception):
    """The client disconnected before its upload was complete."""


class UploadTimeout(InvalidRequest):
    code = 408
    name = "RequestTimeout"


@dataclass
class Upload:
    fields: dict[str, list[str]] = field(default_factory=dict)
    #: Where the file part was written, and the name the client gave it.
    path: Path | None = None
    filename: str = ""


def boundary_of(headers: Mapping[str, str]) -> bytes:
    """The multipart boundary of the request's ``Content-Type`` (header names in lower case)."""
    mimetype, options = parse_options_header(headers.get("content-type", ""))
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise InvalidRequest(
            "The request must be multipart/form-data with the audio as its 'file' field.",
            FILE_FIELD,
        )
    return options["boundary"].encode("latin-1")


async def receive_upload(
    receive: ASGIReceiveCallable, boundary: bytes, folder: Path, max_bytes: int
) -> Upload:
    """The whole request body, parsed; the file part written into ``folder``."""
    # No size limit in the decoder: it would count its buffer, which holds a received chunk of
    # the file too; fields are limited as they are collected.
    decoder = MultipartDecoder(boundary, None, max_parts=MAX_PARTS)
    upload = Upload()
    reader = _PartWriter(upload, folder, max_bytes)
    try:
        while True:
            with trio.move_on_after(IDLE_TIMEOUT_S) as waiting:
                message = await receive()
            if waiting.cancelled_caught:
                raise UploadTimeout(f"No data for {IDLE_TIMEOUT_S:g} s: the upload was stopped.")
            if message["type"] != "http.request":
                raise ClientGone  # http.disconnect
            decoder.receive_data(message["body"])
            if not message.get("more_body", False):
                decoder.receive_data(None)
            if reader.handle(decoder):
                break
            if len(decoder.buffer) > MAX_PENDING_BYTES:  # say, part headers that never end
                raise InvalidRequest("The multipart body is malformed: a part never ends.")
            if not message.get("more_body", False):
                raise InvalidRequest("The multipart body ends before its last boundary.")
    except RequestEntityTooLarge:
        raise _too_much_form() from None
    except ValueError as error:  # werkzeug's word for a malformed body
        raise InvalidRequest(f"The multipart body is malformed: {error}") from error
    finally:
        reader.close()
    if upload.path is None:
        raise InvalidRequest("The request has no 'file' field with the audio.", FILE_FIELD)
    return upload


class _PartWriter:
    """The decoder's events into fields and one file."""

    def __init__(self, upload: Upload, folder: Path, max_bytes: int) -> None:
        self._upload = upload
        self._folder = folder
        self._max_bytes = max_bytes
        self._written = 0
        self._field: str | None = None
        self._value = bytearray()
        self._file: BinaryIO | None = None

    def handle(self, decoder: MultipartDecoder) -> bool:
        """Handle what the decoder has; True once the whole body is parsed."""
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                return False
            if isinstance(event, Epilogue):
                return True
            if isinstance(event, File) and event.name == FILE_FIELD:
                if self._upload.path is not None:
                    raise InvalidRequest("Send one file per request.", FILE_FIELD)
                self._upload.path = self._folder / "upload"
                self._upload.filename = event.filename
                self._file = self._upload.path.open("wb")
                self._field = None
            elif isinstance(event, Field | File):
                self._field = event.name
                self._value.clear()
            elif isinstance(event, Data):
                self._data(event)

    def _data(self, event: Data) -> None:
        if self._field is None and self._file is not None:
            self._written += len(event.data)
            if self._written > self._max_bytes:
                raise FileTooLarge(
                    f"The file is larger than this server's limit of {self._max_bytes / 1e6:g} MB."
                )
            self._file.write(event.data)
            if not event.more_data:
                self._file.close()
            return
        self._value += event.data
        if len(self._value) > MAX_FIELD_BYTES:
            raise _too_much_form()
        if not event.more_data and self._field is not None:
            value = self._value.decode("utf-8", "replace")
            self._upload.fields.setdefault(self._field, []).append(value)
            self._field = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _too_much_form() -> InvalidRequest:
    return InvalidRequest(
        f"A form field above {MAX_FIELD_BYTES} bytes, or more than {MAX_PARTS} parts."
    )
