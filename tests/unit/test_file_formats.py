"""Transcripts into OpenAI's formats: subtitles read back with real parsers."""

from __future__ import annotations

import itertools
import json

import srt
import webvtt

from stt.engines.base import Hypothesis, Word
from stt.files.formats import MAX_CUE_CHARS, MAX_CUE_S, cues, render
from stt.files.transcript import Segment, Transcript, TranscriptBuilder


def words(text: str, start: float, step: float) -> tuple[Word, ...]:
    return tuple(
        Word(w, start + i * step, start + (i + 1) * step - 0.05, 0.9)
        for i, w in enumerate(text.split())
    )


def transcript(*segments: Segment, duration: float = 30.0) -> Transcript:
    return Transcript(segments, duration, "en-US", "whisper-tiny-en")


def segment(text: str, start: float, step: float = 0.3) -> Segment:
    ws = words(text, start, step)
    return Segment(ws[0].start, ws[-1].end, text, ws, 0.8)


def test_srt_and_vtt_parse_with_the_times_of_the_words():
    t = transcript(segment("hello there", 1.0), segment("general kenobi", 3661.5))
    parsed = list(srt.parse(render(t, "srt")))
    assert [c.content for c in parsed] == ["hello there", "general kenobi"]
    assert parsed[0].start.total_seconds() == 1.0
    assert parsed[0].end.total_seconds() == 1.55
    assert parsed[1].start.total_seconds() == 3661.5  # past an hour
    vtt = list(webvtt.from_string(render(t, "vtt")))
    assert [(c.start, c.end, c.text) for c in vtt] == [
        ("00:00:01.000", "00:00:01.550", "hello there"),
        ("01:01:01.500", "01:01:02.050", "general kenobi"),
    ]


def test_a_long_utterance_is_cut_into_readable_cues_at_word_boundaries():
    long = segment(" ".join(f"word{i}" for i in range(60)), 0.0, step=0.4)
    cut = list(cues(transcript(long)))
    assert len(cut) > 3
    assert all(len(c.text) <= MAX_CUE_CHARS and c.end - c.start <= MAX_CUE_S for c in cut)
    assert " ".join(c.text for c in cut) == long.text
    assert all(a.end <= b.start for a, b in itertools.pairwise(cut))


def test_a_segment_without_words_is_one_cue():
    t = transcript(Segment(2.0, 4.0, "no word times"))
    assert [(c.start, c.end, c.text) for c in cues(t)] == [(2.0, 4.0, "no word times")]


def test_json_text_and_verbose_json():
    t = transcript(segment("one two", 0.5), segment("three", 2.0), duration=3.2)
    assert json.loads(render(t, "json")) == {
        "text": "one two three",
        "usage": {"type": "duration", "seconds": 4},
    }
    assert render(t, "text") == "one two three\n"
    verbose = json.loads(render(t, "verbose_json", ("word",)))
    assert verbose["language"] == "english" and verbose["duration"] == 3.2
    assert "segments" not in verbose
    assert [w["word"] for w in verbose["words"]] == ["one", "two", "three"]
    with_segments = json.loads(render(t, "verbose_json"))
    assert [s["text"] for s in with_segments["segments"]] == ["one two", "three"]
    assert "words" not in with_segments


def test_the_builder_keeps_finals_in_order_and_skips_empty_ones():
    builder = TranscriptBuilder()
    first = Hypothesis("one two", True, 0.9, words("one two", 0.5, 0.3))
    assert builder.add([Hypothesis("one", False), first], 2.0) == [builder.segments[0]]
    assert builder.add([Hypothesis("  ", True)], 3.0) == []
    # No word times: it was said between the last segment's end and this position.
    builder.add([Hypothesis("three", True)], 4.0)
    t = builder.transcript(4.5, "en-US", "m")
    assert [(s.start, s.end, s.text) for s in t.segments] == [
        (0.5, 1.05, "one two"),
        (1.05, 4.0, "three"),
    ]
    assert t.text == "one two three" and t.segments[0].confidence == 0.9
