"""What pkgrepo reads of ELF files: their kind from the first bytes, and their dynamic section.

Shared by the build (strip, dependency scan) and the image room (file
minimizer), so both agree on what an ELF file is and where libraries live.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

# The directories musl's loader searches by default (/lib:/usr/local/lib:/usr/lib). A library's
# SONAME is provided only from these, and `libNAME.so` links only here are linker-only files.
LIB_DIRS = ("lib", "usr/local/lib", "usr/lib")
MAGIC = b"\x7fELF"
HEAD = 64  # enough bytes for `kind`
_TYPES = {1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN"}


def in_lib_dir(rel: str) -> bool:
    """Is `rel` (relative to a root) directly in one of LIB_DIRS?"""
    return os.path.dirname(rel) in LIB_DIRS


def kind(head: bytes) -> str | None:
    """`archive` (an `ar` archive of objects), `ET_REL`, `ET_EXEC`, `ET_DYN`, or None for anything else."""
    if head[:8] == b"!<arch>\n":
        return "archive"
    if head[:4] != MAGIC or len(head) < 18:
        return None
    return _TYPES.get(int.from_bytes(head[16:18], "little" if head[5] == 1 else "big"))


@dataclass(frozen=True)
class Dynamic:
    """The dynamic linking facts of one ELF file."""

    soname: str | None
    needed: tuple[str, ...]
    interp: str | None  # PT_INTERP: the program loader's path


def dynamic(f: BinaryIO) -> Dynamic | None:
    """The dynamic section of an open file, or None when it is not a readable ELF file."""
    if f.read(4) != MAGIC:
        return None
    f.seek(0)
    soname, needed, interp = None, [], None
    try:
        elf = ELFFile(f)
        for seg in elf.iter_segments():
            if seg.header.p_type == "PT_INTERP":
                interp = seg.get_interp_name()
        for sec in elf.iter_sections():
            if not isinstance(sec, DynamicSection):
                continue
            for tag in sec.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(tag.needed)
                elif tag.entry.d_tag == "DT_SONAME":
                    soname = tag.soname
    except (ELFError, ValueError):
        return None
    return Dynamic(soname, tuple(needed), interp)


def read_dynamic(path: Path) -> Dynamic | None:
    """`dynamic` of a file by path (follows links: for trees pkgrepo itself installed)."""
    try:
        with open(path, "rb") as f:
            return dynamic(f)
    except OSError:
        return None
