"""Where a lake lives: a folder (the default) or an object-store URI, reached through pyarrow.

Delta tables are opened by URI (deltalake speaks to the store itself); the lake's own small
files (the snapshot log, the catalog) go through the pyarrow file system of the root, written
whole so a reader never sees half of one. DuckDB reads the Parquet files by path, which for an
object store needs its ``httpfs`` extension.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from fhirlake.lake.errors import LakeBusyError, LakeError

__all__ = ["DEFAULT_LAKE", "DEMO_LAKE", "Storage", "default_root"]

DEFAULT_LAKE = ".fhirlake"
DEMO_LAKE = ".fhirlake-demo"  # where `fhirlake demo` builds its lake by default
_LOCK = "_fhirlake/lock"


def default_root(cwd: Path | None = None, *, reading: bool = False) -> str:
    """The lake to use when none is named: ``$FHIRLAKE_LAKE``; else ``./.fhirlake`` if it exists;
    else the nearest ``.fhirlake`` folder in a parent of the working directory (as git finds its
    repository), so a notebook running in ``notebooks/`` opens the project's lake; else, when
    only ``reading``, the nearest lake ``fhirlake demo`` built (``.fhirlake-demo``), so the
    researcher's first notebook opens the demo without configuration; else ``./.fhirlake``
    (where a new lake is created: nothing is ever written into the demo's lake by default)."""
    configured = os.environ.get("FHIRLAKE_LAKE")
    if configured:
        return configured
    here = (cwd or Path.cwd()).resolve()
    names = (DEFAULT_LAKE, DEMO_LAKE) if reading else (DEFAULT_LAKE,)
    for name in names:
        for folder in (here, *here.parents):
            if (folder / name).is_dir():
                return str(folder / name)
    return DEFAULT_LAKE


@dataclass(frozen=True)
class Storage:
    """The root of a lake: its file system, and how to name things under it."""

    root: str
    fs: pafs.FileSystem
    base: str
    local: bool

    @classmethod
    def open(cls, root: str | Path | None = None, *, reading: bool = False) -> Storage:
        """The storage of ``root`` (a folder or a URI such as ``s3://bucket/lake``); with no
        ``root``, :func:`default_root` (``reading``: a connection that will not write)."""
        text = str(root if root is not None else default_root(reading=reading))
        if "://" not in text:
            text = str(Path(text).expanduser().resolve())
        try:
            fs, base = pafs.FileSystem.from_uri(text)
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise LakeError(f"cannot open the lake root {text!r}: {exc}") from exc
        base = base.rstrip("/")
        local = isinstance(fs, pafs.LocalFileSystem)
        return cls(root=base if local else text.rstrip("/"), fs=fs, base=base, local=local)

    def path(self, *parts: str) -> str:
        """A path under the root, for the pyarrow file system."""
        return "/".join((self.base, *parts))

    def uri(self, *parts: str) -> str:
        """A path or URI under the root, for deltalake and DuckDB."""
        return "/".join((self.root, *parts))

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound)

    def read_bytes(self, *parts: str) -> bytes | None:
        """The content of a file, or None when there is none."""
        try:
            with self.fs.open_input_stream(self.path(*parts)) as stream:
                return bytes(stream.read())
        except FileNotFoundError:
            return None

    def write_atomic(self, data: bytes, *parts: str) -> None:
        """Replace a file in one step: a local temp file renamed over it, or one object PUT."""
        target = self.path(*parts)
        parent = target.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        if not self.local:
            with self.fs.open_output_stream(target) as stream:
                stream.write(data)
            return
        handle, temp = tempfile.mkstemp(prefix=".tmp-", dir=parent)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def put(self, local: Path, *parts: str) -> None:
        """Move a local file (a run's staged output) to ``parts`` under the root."""
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if self.local:
            os.replace(local, target)
        else:
            pafs.copy_files(str(local), target, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs)
            local.unlink()

    def remove_tree(self, *parts: str) -> None:
        path = self.path(*parts)
        if self.fs.get_file_info(path).type != pafs.FileType.NotFound:
            self.fs.delete_dir(path)

    @contextmanager
    def work_dir(self) -> Iterator[Path]:
        """A local scratch folder for one run (under the lake when it is local), removed after."""
        if self.local:
            parent = Path(self.path("_fhirlake", "work"))
            parent.mkdir(parents=True, exist_ok=True)
            folder = parent / uuid.uuid4().hex
            folder.mkdir()
        else:
            folder = Path(tempfile.mkdtemp(prefix="fhirlake-work-"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def clean_work(self) -> None:
        """Remove scratch folders left by runs that were killed (call with the lock held)."""
        if self.local:
            shutil.rmtree(self.path("_fhirlake", "work"), ignore_errors=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the lake's write lock (local lakes): one writer at a time.

        A lock left by a process that no longer runs on this host is taken over.
        """
        if not self.local:
            yield
            return
        path = Path(self.path(*_LOCK.split("/")))
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = f"{socket.gethostname()} {os.getpid()}"
        for _attempt in range(2):
            try:
                handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if _lock_is_live(path):
                    raise LakeBusyError(f"{self.root} is being written by another process ({path.read_text().strip()})") from None
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(handle, "w") as file:
                file.write(owner)
            break
        else:
            raise LakeBusyError(f"{self.root}: cannot take the write lock {path}")
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _lock_is_live(path: Path) -> bool:
    """Whether the process named in a lock file still runs (on this host)."""
    try:
        host, pid = path.read_text().split()
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
