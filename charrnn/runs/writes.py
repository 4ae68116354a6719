"""Writing run files so that a failure leaves nothing half-written and says why, in the run's name.

Every file but metrics.jsonl is written to a temp file, fsynced and renamed into place (``atomic_write``); a
line is appended whole or not at all (``append_line``); the status a failing run leaves is written even on a
full disk (``write_anyway``). A write refused for lack of room, permission or size raises ``WriteFailed``:
"disk full: 1.2 MiB free in my-run", "cannot write model.safetensors in my-run: read-only file system".
torch.save reports a full disk as its own RuntimeError ("unexpected pos"), safetensors as "(os error 28)":
both are read as the write failures they are; any other error stays itself (a bug is no full disk).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path


class WriteFailed(OSError):
    """A run file could not be written (disk full, read-only folder); the message says which and how much room is
    left, in the run's name, never a server path: 'disk full: 1.2 MiB free in my-run'."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


# --- atomic files ---------------------------------------------------------------
LOW_ROOM = 1 << 20      # a write that failed with less than this free failed for lack of room
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)
OS_ERROR = re.compile(r"\(os error (\d+)\)")                          # how safetensors (Rust) reports one
SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed")      # how torch.save reports one, with no errno


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use on ``directory``'s file system."""
    return shutil.disk_usage(directory).free


def room_after_failure(directory: Path) -> int | None:
    try:
        return free_bytes(directory)
    except OSError:
        return None


def error_code(error: BaseException) -> int | None:
    """The errno of a failed write, also when a library wrapped it in its own error."""
    if isinstance(error, OSError):
        return error.errno
    found = OS_ERROR.search(str(error))
    return int(found.group(1)) if found else None


def probe_code(directory: Path) -> int | None:
    """Whether a small new file can be written in ``directory`` now: None if so, else the errno refusing it."""
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".probe.", suffix=".tmp")
    except OSError as e:
        return e.errno
    try:
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
        return None
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)


def write_failure(error: BaseException, path: Path, room: int | None) -> WriteFailed | None:
    """The ``WriteFailed`` that a failed write of ``path`` amounts to; None for an error that is no write failure
    (a bug stays itself). ``room``: the free bytes measured right after the failure, before the partial file went
    (torch reports a full disk as 'unexpected pos', with no errno: an almost full disk is what tells)."""
    path = Path(path)
    code, run = error_code(error), path.parent.name
    if code is None and not any(mark in str(error) for mark in SHORT_WRITE):
        return None
    if code in NO_ROOM or (room is not None and room < LOW_ROOM):
        free = room_after_failure(path.parent)            # the partial file is gone by now: what is really free
        return WriteFailed(errno.ENOSPC, f"disk full: {human(free if free is not None else room or 0)} free in {run}")
    code = code or probe_code(path.parent)
    if code is None:
        return WriteFailed(errno.EIO, f"cannot write {path.name} in {run}: the write stopped short")
    return WriteFailed(code, f"cannot write {path.name} in {run}: {os.strerror(code).lower()}")


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync, then rename over ``path``: readers see old or new, never half.

    A write that fails (disk full, read-only, too large) raises ``WriteFailed`` once the temp file is gone."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise write_failure(e, path, None) or e from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except Exception as e:
        room = room_after_failure(path.parent)
        Path(tmp).unlink(missing_ok=True)
        failed = write_failure(e, path, room)
        if failed is None:
            raise
        raise failed from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def overwrite_in_place(path: Path, data: bytes) -> None:
    """Rewrite an existing small file in its own blocks (the last resort on a full disk: no new block is needed
    while ``data`` fits in what the file has). Not atomic: only for the status a failing run leaves."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1), encoding="utf-8"))


def append_line(path: Path, line: bytes) -> None:
    """Append ``line`` to ``path``; a write that fails part-way is cut back off, so no half line is left."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_failure(e, path, None) or e from None
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as e:
            room = room_after_failure(path.parent)
            os.ftruncate(fd, size)                # truncating needs no room: the half line goes
            raise write_failure(e, path, room) or e from None
    finally:
        os.close(fd)


def write_anyway(path: Path, data: bytes) -> bool:
    """Write a small file whatever the disk: atomically; else, on a full disk or a folder turned read-only, over
    the old file in place; else the old file is removed. True when ``data`` was written."""
    try:
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        return True
    except OSError:
        pass
    try:
        overwrite_in_place(path, data)
        return True
    except OSError:
        pass
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass
    return False


def human(n: int) -> str:
    """A size in binary units, the way Gradio's file box and the limits count them (1 MiB = 1,048,576 bytes)."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
