"""A recording through a loaded model, blocking: what ``sepia-stt transcribe`` runs.

The server's endpoint does the same with Trio and the shared engine slots
(``stt.server.file_jobs``); both decode with :class:`AudioFile` and build the
transcript with :class:`TranscriptBuilder`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stt.engines.base import LoadedModel, RecognitionOptions
from stt.files.decode import AudioFile
from stt.files.transcript import Transcript, TranscriptBuilder
from stt.pcm import BYTES_PER_SAMPLE

#: Seconds of audio per engine call.
CHUNK_S = 5.0

#: Called with (seconds decoded, seconds in all or None) after each chunk.
Progress = Callable[[float, float | None], None]


def transcribe_file(
    model: LoadedModel,
    path: Path,
    language: str,
    progress: Progress | None = None,
    prompt: str | None = None,
) -> Transcript:
    """The whole transcript of ``path``; decoding errors are ``SttError`` s."""
    rate = int(RecognitionOptions().sample_rate)
    options = RecognitionOptions(
        sample_rate=rate,
        words=True,
        language=language,
        extra={"prompt": prompt} if prompt else {},
    )
    with AudioFile(path, rate) as audio:
        recognizer = model.create_recognizer(options)
        try:
            builder = TranscriptBuilder()
            chunk_bytes = int(CHUNK_S * rate) * BYTES_PER_SAMPLE
            while pcm := audio.read(chunk_bytes):
                builder.add(recognizer.accept_audio(pcm), audio.decoded_s)
                if progress is not None:
                    progress(audio.decoded_s, audio.duration_s)
            builder.add([recognizer.finish()], audio.decoded_s)
        finally:
            recognizer.close()
        return builder.transcript(audio.decoded_s, language, model.spec.name)
