"""The ceiling: the same audio decoded in-process by the same engine, with no server.

* :func:`reference_run` feeds one stream in browser-sized frames and notes at
  which audio position each utterance final comes out: the load generator's lag
  behind realtime is measured against these positions.
* :func:`ceiling_run` decodes N streams round-robin on T threads, in chunks as
  large as the server joins queued frames to: the most audio per second the
  engine can decode on this machine.  The server's throughput is reported as a
  ratio of it.  Each stream's recognizer is made when its first chunk comes, in
  the timed run, as the server makes a session's recognizer at its first audio:
  both sides do the same engine work.

``python -m benchmarks.ceiling --engine vosk -n 4`` runs both alone.
"""

from __future__ import annotations

import argparse
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.audio import BYTES_PER_SECOND, load_audio, seconds, speech_for
from benchmarks.models import MODELS, load_in_process, write_settings
from benchmarks.resources import CpuMeter, RssSampler, rss_mb
from stt.client import BROWSER_FRAME_BYTES
from stt.engines.base import LoadedModel, RecognitionOptions, Recognizer
from stt.server.connection import MAX_DECODE_BYTES
from stt.server.memory import trim_heap


@dataclass(frozen=True, slots=True)
class Reference:
    """One stream decoded alone, frame by frame, as a realtime client would send it."""

    #: Audio position (s) at which each utterance final with words came out.
    final_positions_s: tuple[float, ...]
    #: Audio position (s) of the first partial with words.
    first_partial_s: float | None
    #: The utterance finals and the last final, joined by spaces.
    transcript: str
    #: How long ``finish()`` (the final after ``audioend``) took.
    finish_s: float


@dataclass(frozen=True, slots=True)
class CeilingResult:
    sessions: int
    threads: int
    #: Audio of all sessions together.
    audio_s: float
    wall_s: float
    cpu_s: float
    #: Cores that other processes kept busy meanwhile.
    others_cores: float
    #: Duration of each session's ``finish()``.
    finish_s: tuple[float, ...]
    rss_before_mb: float
    rss_peak_mb: float

    @property
    def throughput(self) -> float:
        """Audio seconds decoded per wall second."""
        return self.audio_s / self.wall_s


def recognition_options(language: str) -> RecognitionOptions:
    """What a welcome naming only the model gets: defaults, the model's language."""
    return RecognitionOptions(language=language)


def reference_run(model: LoadedModel, pcm: bytes, options: RecognitionOptions) -> Reference:
    recognizer = model.create_recognizer(options)
    positions: list[float] = []
    texts: list[str] = []
    first_partial: float | None = None
    for offset in range(0, len(pcm), BROWSER_FRAME_BYTES):
        frame = pcm[offset : offset + BROWSER_FRAME_BYTES]
        position = (offset + len(frame)) / BYTES_PER_SECOND
        for hypothesis in recognizer.accept_audio(frame):
            if hypothesis.is_final and hypothesis.text:
                positions.append(position)
                texts.append(hypothesis.text)
            elif hypothesis.text and first_partial is None:
                first_partial = position
    started = time.perf_counter()
    last = recognizer.finish()
    finish_s = time.perf_counter() - started
    recognizer.close()
    transcript = " ".join(filter(None, [*texts, last.text]))
    return Reference(tuple(positions), first_partial, transcript, finish_s)


def ceiling_run(
    model: LoadedModel,
    pcm: bytes,
    options: RecognitionOptions,
    *,
    sessions: int,
    threads: int,
    chunk_bytes: int = MAX_DECODE_BYTES,
) -> CeilingResult:
    pid = os.getpid()
    # glibc keeps memory freed by earlier runs (hundreds of MB after Vosk decoders
    # close) and reuses it, which would hide this run's growth: hand it back first.
    trim_heap()
    rss_before = rss_mb(pid)
    chunks = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
    with RssSampler(pid) as rss, CpuMeter(pid) as cpu:
        finish_s = decode_round_robin(
            lambda: model.create_recognizer(options), sessions, chunks, threads
        )
    return CeilingResult(
        sessions=sessions,
        threads=threads,
        audio_s=sessions * seconds(pcm),
        wall_s=cpu.usage.wall_s,
        cpu_s=cpu.usage.cpu_s,
        others_cores=cpu.usage.others_cores,
        finish_s=tuple(finish_s),
        rss_before_mb=rss_before,
        rss_peak_mb=rss.peak_mb,
    )


def decode_round_robin(
    make_recognizer: Callable[[], Recognizer], streams: int, chunks: list[bytes], threads: int
) -> list[float]:
    """Every stream gets a recognizer, every chunk, then ``finish()``; returns finish durations.

    One FIFO queue of (stream, next chunk) items: a stream goes to the back after
    each chunk, so all streams advance together, as the server's fair engine
    limiter makes them.
    """
    work: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    for index in range(streams):
        work.put((index, 0))
    recognizers: list[Recognizer | None] = [None] * streams
    finish_s = [0.0] * streams
    unfinished = streams
    lock = threading.Lock()

    def stop_workers() -> None:
        for _ in range(threads):
            work.put(None)

    def worker() -> None:
        nonlocal unfinished
        try:
            while (item := work.get()) is not None:
                index, chunk = item
                recognizer = recognizers[index] or make_recognizer()
                recognizers[index] = recognizer
                if chunk < len(chunks):
                    recognizer.accept_audio(chunks[chunk])
                    work.put((index, chunk + 1))
                    continue
                started = time.perf_counter()
                recognizer.finish()
                finish_s[index] = time.perf_counter() - started
                recognizer.close()
                with lock:
                    unfinished -= 1
                    if unfinished == 0:
                        stop_workers()
        except BaseException:
            stop_workers()
            raise

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    return finish_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=sorted(MODELS), default="vosk")
    parser.add_argument("-n", "--sessions", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--audio", type=Path, help="16 kHz s16le .raw, or any file sox reads")
    parser.add_argument("--quick", action="store_true", help="the short benchmark audio")
    args = parser.parse_args()
    model = MODELS[args.engine]
    pcm = load_audio(args.audio) if args.audio else speech_for(args.engine, quick=args.quick)
    with tempfile.TemporaryDirectory() as folder:
        spec, loaded = load_in_process(write_settings(Path(folder), model, threads=args.threads))
    options = recognition_options(spec.language)
    reference = reference_run(loaded, pcm, options)
    print(f"reference: {reference}")
    result = ceiling_run(loaded, pcm, options, sessions=args.sessions, threads=args.threads)
    print(f"ceiling: {result.throughput:.2f} audio s per wall s; {result}")


if __name__ == "__main__":
    main()
