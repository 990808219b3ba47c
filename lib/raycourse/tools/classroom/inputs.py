"""Find the learners' notebooks, and read them without trusting what the folder holds.

A class's submissions folder comes from many hands (an LMS export, a zip, a
shared drive), so a name ending in ``.ipynb`` may be anything: a folder, a named
pipe that blocks whoever opens it, a link to ``/dev/zero`` or to a file outside
the folder, a 2 GB file. Only regular files inside the folder, under a size cap,
are read; everything else is reported with its reason and never opened.
Symbolic links are followed only when they stay inside the folder. Files are
opened without blocking and without following a last-moment link, and checked
again on the open file itself (a file swapped after the walk is still refused).

Layouts (both may be mixed):

* one folder per learner: ``SUBMISSIONS/<learner>/<NN_topic>.ipynb`` (deeper
  folders are fine; the first folder names the learner);
* flat: ``SUBMISSIONS/<learner>__<NN_topic>.ipynb`` (also ``alice_01_tasks.ipynb``,
  ``01_tasks-alice.ipynb``: the lesson is the course notebook's name, or the first
  two-digit number, and the rest of the name is the learner).

Hidden files and folders (``.ipynb_checkpoints``) are ignored.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

MAX_BYTES = 20 * 1024 * 1024
_KINDS = {stat.S_IFIFO: "a named pipe", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder", stat.S_IFLNK: "a link"}


class Unreadable(Exception):
    """A file that will not be read; the message is the reason shown in the report."""


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024 / 1024:.1f} MB" if nbytes >= 1024 * 1024 else f"{nbytes:,} bytes"


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def refusal(path: Path, root: Path, limit: int = MAX_BYTES) -> str | None:
    """Why ``path`` (under ``root``) will not be graded, or None if it is a readable regular file."""
    real_root = os.path.realpath(root)
    try:
        link = os.lstat(path)
    except OSError as error:
        return f"could not be read ({error.strerror})"
    if stat.S_ISLNK(link.st_mode):
        target = os.path.realpath(path)
        if not _inside(target, real_root):
            return "is a link to a file outside the submissions folder: not followed"
        try:
            link = os.stat(path)
        except OSError:
            return "is a broken link"
    if stat.S_ISDIR(link.st_mode):
        return "is a folder, not a notebook"
    if not stat.S_ISREG(link.st_mode):
        return f"is {_kind(link.st_mode)}, not a regular file: not opened"
    if link.st_size > limit:
        return f"is {_size(link.st_size)}, more than the {_size(limit)} a notebook may be: clear its outputs " \
               "(Edit > Clear Outputs of All Cells) and hand it in again"
    return None


def read_bytes(path: Path, root: Path, limit: int = MAX_BYTES) -> bytes:
    """The file's bytes, or :class:`Unreadable`: never blocks, never follows a link out of ``root``."""
    why = refusal(path, root, limit)
    if why:
        raise Unreadable(f"{path.name} {why}.")
    real = os.path.realpath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as error:
        raise Unreadable(f"{path.name} could not be opened ({error.strerror}).") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped for something else after the walk
            raise Unreadable(f"{path.name} is {_kind(opened.st_mode)}, not a regular file: not read.")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise Unreadable(f"{path.name} is more than the {_size(limit)} a notebook may be.")
        return b"".join(chunks)
    finally:
        os.close(fd)


def walk(root: Path, skip: Path | None = None) -> Iterator[tuple[Path, str | None]]:
    """Every ``*.ipynb`` entry under ``root`` (no hidden ones), with the reason it will not be read, if any."""
    real_root = os.path.realpath(root)
    skip_real = os.path.realpath(skip) if skip else None
    for folder, dirs, files in os.walk(root, followlinks=False):
        if skip_real and _inside(os.path.realpath(folder), skip_real):
            dirs[:] = []
            continue
        kept = []
        for name in sorted(dirs):
            if name.startswith((".", "__MACOSX")):
                continue
            path = Path(folder) / name
            if os.path.islink(path):
                if not _inside(os.path.realpath(path), real_root):
                    yield path, "is a link to a folder outside the submissions folder: not followed"
                continue  # a link to a folder inside is walked where it really is
            if name.lower().endswith(".ipynb"):
                yield path, "is a folder, not a notebook"
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith((".", "__MACOSX")) or not name.lower().endswith(".ipynb"):
                continue
            path = Path(folder) / name
            yield path, refusal(path, root)


# --- who handed in what ----------------------------------------------------------------------------


def lesson_of(stem: str, stems: dict[str, str]) -> tuple[str | None, str]:
    """(lesson number or None, the part of the file name that named it); ``stems`` maps number -> ``NN_topic``."""
    for number, lesson_stem in stems.items():
        if lesson_stem.lower() in stem.lower():
            start = stem.lower().index(lesson_stem.lower())
            return number, stem[start : start + len(lesson_stem)]
    match = re.search(r"(?<!\d)(\d{1,2})(?!\d)", stem)
    return (match.group(1).zfill(2), match.group(1)) if match else (None, "")


def learner_of(relative: Path, token: str, root: Path) -> str:
    """The first folder, else the file name without its lesson part (``alice__01_tasks`` -> ``alice``)."""
    if len(relative.parts) > 1:
        return relative.parts[0]
    stem = relative.stem
    parts = [p for p in stem.split("__") if p] if "__" in stem else [stem.replace(token, " ", 1) if token else stem]
    name = next((p for p in parts if not token or token not in p), parts[0] if parts else "")
    return name.strip(" _-.()") or root.resolve().name


@dataclass
class Submissions:
    """What the folder holds: files per (learner, lesson), refused files per (learner, lesson), unknown files."""

    files: dict[tuple[str, str], list[Path]] = field(default_factory=dict)
    refused: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # (learner, lesson or "?", message)


def discover(root: Path, stems: dict[str, str], wanted: list[str] | None, skip: Path | None = None) -> Submissions:
    """Sort the folder's notebooks by learner and lesson; refused and unknown files keep their reason."""
    found = Submissions()
    for path, why in walk(root, skip):
        relative = path.relative_to(root)
        number, token = lesson_of(path.stem, stems)
        learner = learner_of(relative, token, root)
        if number in stems and (wanted is None or number in wanted):
            if why:
                found.refused.setdefault((learner, number), []).append(f"{relative} {why}.")
            else:
                found.files.setdefault((learner, number), []).append(path)
        elif number not in stems and wanted is None:
            reason = why or (f"lesson {number} is not part of this course" if number else "its name has no lesson number")
            hint = "" if why else " (name files NN_topic.ipynb)"
            found.unknown.append((learner, number or "?", f"{relative} was not graded: {reason}{hint}."))
    return found


def choose(files: list[Path], stem: str) -> tuple[Path, str]:
    """The file to grade among a learner's files for one lesson (named exactly like the course's, else the newest)."""
    exact = [f for f in files if f.stem == stem]
    chosen = exact[0] if exact else max(files, key=lambda f: os.stat(f).st_mtime)
    others = [f.name for f in files if f != chosen]
    return chosen, (f"Graded {chosen.name}; also handed in: {', '.join(others)}." if others else "")
