"""Make the image's venv smaller without changing what the server runs (Containerfile, stage 2).

* Shared libraries are stripped as Debian strips its own (``strip --strip-unneeded`` keeps the
  dynamic symbols they are linked by; CTranslate2's extension module alone ships about 65 MB of
  debug information). Wheels' libraries were rewritten by patchelf, and strip can misplace their
  segments (numpy's OpenBLAS then fails with "ELF load command address/offset not
  page-aligned"): every stripped file is checked and, if its loadable segments moved off their
  alignment, stripped less (debug information only) or left as it was.
* numpy's test suite and f2py (a Fortran wrapper generator, of no use without a compiler) and
  onnxruntime's model conversion and quantization tools are removed: the server never imports
  them.

Then the caller compiles the bytecode and imports the engines' libraries once.
Usage: python slim_venv.py SITE_PACKAGES
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

PT_LOAD = 1
#: Left as shipped: the build checks that stripped libraries still load, and importing
#: onnxruntime hangs under qemu-user (emulated arm64 builds). Its libraries carry no symbols
#: on amd64 anyway.
NOT_STRIPPED = ("onnxruntime", "onnxruntime.libs")
UNUSED = [
    "numpy/f2py",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
]


def load_segments_aligned(path: Path) -> bool:
    """True when every PT_LOAD segment's offset and address agree modulo its alignment."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return False
    is_64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is_64:
        (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for index in range(phnum):
        at = phoff + index * phentsize
        if is_64:
            p_type, _, p_offset, p_vaddr, _, _, _, p_align = struct.unpack_from(
                endian + "IIQQQQQQ", data, at
            )
        else:
            p_type, p_offset, p_vaddr, _, _, _, _, p_align = struct.unpack_from(
                endian + "IIIIIIII", data, at
            )
        if p_type == PT_LOAD and p_align > 1 and (p_vaddr - p_offset) % p_align:
            return False
    return True


def has_symbols(path: Path) -> bool:
    sections = subprocess.run(
        ["readelf", "-S", "-W", str(path)], capture_output=True, text=True, check=False
    ).stdout
    return " .symtab " in sections or " .debug_info " in sections


def strip(path: Path) -> str:
    """Strip ``path`` in place as far as it stays loadable; returns what was done."""
    if not load_segments_aligned(path) or not has_symbols(path):
        return "kept"
    trial = path.with_name(path.name + ".stripping")
    for option in ("--strip-unneeded", "--strip-debug"):
        shutil.copy2(path, trial)
        done = subprocess.run(["strip", option, str(trial)], capture_output=True, check=False)
        if done.returncode == 0 and load_segments_aligned(trial):
            trial.replace(path)
            return option
    trial.unlink()
    return "kept (strip would misalign it)"


def main(site_packages: Path) -> None:
    before = sum(f.stat().st_size for f in site_packages.rglob("*") if f.is_file())
    for library in sorted(site_packages.rglob("*.so*")):
        package = library.relative_to(site_packages).parts[0]
        if library.is_file() and not library.is_symlink() and package not in NOT_STRIPPED:
            size = library.stat().st_size
            outcome = strip(library)
            saved = (size - library.stat().st_size) / 1e6
            name = library.relative_to(site_packages)
            if outcome.startswith("--"):
                if saved >= 0.5:  # the big ones; all of them is a long list
                    print(f"{name}: {outcome} (-{saved:.1f} MB)")
            elif outcome != "kept":
                print(f"{name}: {outcome}")
    for tests in sorted(site_packages.glob("numpy/**/tests")):
        shutil.rmtree(tests, ignore_errors=True)
    for unused in UNUSED:
        shutil.rmtree(site_packages / unused, ignore_errors=True)
    (site_packages.parents[2] / "bin" / "f2py").unlink(missing_ok=True)
    after = sum(f.stat().st_size for f in site_packages.rglob("*") if f.is_file())
    print(f"site-packages: {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
