"""Safe downloading: md5, resumable HTTP download, safe tar/zip extraction, the dataset registry.

    download(url, dest, md5)       -> dest        resumes ``dest.part`` with an HTTP Range request
    safe_extract(archive, dest)    -> dest        refuses members that would land outside ``dest``
    download_dataset(name, root)   -> root/name/  download + verify + extract, skipping finished files
    dataset_info(name)             -> DatasetInfo an unknown name raises ValueError (before any folder is made)
    listing()                      -> lines       every data set's files, sizes, md5 and URL (``download --list``)

Nothing half-done is ever left under a final name: downloads go to ``<file>.part`` and are
renamed only after the md5 check; archives are extracted into a temporary folder next to
``dest`` and moved into place at the end, so an interrupted run can simply be run again.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

CHUNK = 1 << 20  # bytes read at a time (md5 and downloads)


class DownloadError(RuntimeError):
    """A file could not be fetched (network error, HTTP error, connection closed early)."""


class ChecksumError(RuntimeError):
    """A file's md5 differs from the expected one."""

    def __init__(self, path, expected: str, actual: str, removed: bool = True):
        self.path, self.expected, self.actual = str(path), expected, actual
        what = "the file was removed; run again to download it afresh" if removed else \
            "the file was left in place: replace it with a good copy"
        super().__init__(f"md5 mismatch for {self.path}: expected {expected}, got {actual} ({what})")


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the destination, or is a device file."""

    def __init__(self, archive, member: str, reason: str):
        self.archive, self.member = str(archive), member
        super().__init__(f"refusing to extract {self.archive}: member {member!r} {reason}")


class ManualDownloadError(RuntimeError):
    """The dataset has no working public download: the message says which files to fetch and where."""


# ----------------------------------------------------------------------------- md5 and download

def md5sum(path, chunk_size: int = CHUNK) -> str:
    """Hex md5 of a file, read in chunks (constant memory)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


class _Restart(Exception):
    """The partial file cannot be continued (range refused or answered wrongly): start from 0."""


def _by_hand(url: str, dest: Path, md5: str | None, reason: str) -> str:
    checksum = f" (md5 {md5})" if md5 else ""
    return (f"could not download {url}: {reason}.\nDownload it by hand (browser, wget, curl) and save "
            f"it as {dest}{checksum}, then run the same command again.")


def _range_start(content_range: str | None) -> int | None:
    m = re.match(r"\s*bytes\s+(\d+)-", content_range or "")
    return int(m.group(1)) if m else None


def _fetch(url: str, dest: Path, part: Path, md5: str | None, progress: bool, timeout: float) -> None:
    """Fetch ``url`` into ``part``, continuing from its current size when the server allows it."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "hdml_lite"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            raise _Restart from e
        raise DownloadError(_by_hand(url, dest, md5, f"HTTP {e.code} {e.reason}")) from e
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        raise DownloadError(_by_hand(url, dest, md5, f"{type(e).__name__}: {e}")) from e
    with resp:
        status = getattr(resp, "status", None)       # None for file:// and ftp://
        if offset and status == 206 and _range_start(resp.headers.get("Content-Range")) != offset:
            raise _Restart                           # a range we did not ask for
        resumed = bool(offset) and status == 206     # otherwise the server sent the whole file
        start = offset if resumed else 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        got = start
        bar = tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=dest.name, disable=not progress)
        try:
            with open(part, "ab" if resumed else "wb") as f, bar:
                while block := resp.read(CHUNK):
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(_by_hand(url, dest, md5, f"interrupted after {got} bytes ({e}); the "
                                         f"partial file {part} is kept and resumed next time")) from e
    if total is not None and got < total:
        raise DownloadError(_by_hand(url, dest, md5, f"connection closed after {got} of {total} bytes; "
                                     f"the partial file {part} is kept and resumed next time"))


def _keep_as_part(dest: Path, part: Path) -> str:
    """``dest`` failed its md5 (a truncated or damaged copy): move it to ``part``, which the next
    fetch continues, unless ``part`` is already as large (then ``dest`` is left untouched: it is
    replaced only by a verified download). Returns the sentence saying what was kept."""
    size = dest.stat().st_size
    if part.is_file() and part.stat().st_size >= size:
        return (f" {dest} ({size} bytes) does not match its md5 and was left untouched; the larger "
                f"partial file {part} is kept and resumed next time.")
    os.replace(dest, part)
    return (f" {dest} did not match its md5 (incomplete or damaged): it was kept as {part} "
            f"({size} bytes), which the next run resumes.")


def download(url: str, dest, md5: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and return ``dest`` (a Path).

    An existing ``dest`` with the right md5 is kept as is; one with another md5 (a truncated
    archive, say) is moved to ``dest.part`` and continued, never deleted: offline, it stays
    there and the ``DownloadError`` says so. Bytes go to ``dest.part``; a later call continues
    it with ``Range: bytes=<size>-`` (a server that ignores the range gets a clean restart).
    The md5 of the finished download is checked before the atomic rename; on mismatch that
    file is removed and ``ChecksumError`` raised. Network failures raise ``DownloadError``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    kept = ""
    if dest.exists():
        if md5 is None or md5sum(dest) == md5:
            if md5 is not None and part.is_file():
                part.unlink()                        # a partial copy of a file now complete
            return dest
        kept = _keep_as_part(dest, part)             # truncated or damaged: resume it, never delete it
    try:
        for _ in range(2):
            try:
                _fetch(url, dest, part, md5, progress, timeout)
                break
            except _Restart:
                if md5 is not None and md5sum(part) == md5:
                    break                            # the partial file was already complete
                part.unlink()
        else:
            raise DownloadError(_by_hand(url, dest, md5, "the server kept refusing the download"))
    except DownloadError as exc:
        note = kept or (f" The partial file {part} ({part.stat().st_size} bytes) is kept and resumed next time."
                        if part.is_file() and str(part) not in str(exc) else "")
        raise DownloadError(f"{exc}{note}") from exc.__cause__
    if md5 is not None:
        actual = md5sum(part)
        if actual != md5:
            part.unlink()
            raise ChecksumError(dest, md5, actual)
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------------------- safe extraction

def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[/\\]+", name) if p not in ("", ".")]


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None


def _check_name(archive, name: str) -> tuple[str, ...]:
    if _is_absolute(name):
        raise UnsafeArchiveError(archive, name, "has an absolute path")
    parts = _parts(name)
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "contains a '..' component")
    return tuple(parts)


def _check_link(archive, name: str, base: tuple[str, ...], target: str, links: set) -> None:
    """Refuse a link whose target, read from folder ``base``, leaves the archive root, or goes
    through another symlink of the archive (which could point anywhere once extracted)."""
    if _is_absolute(target):
        raise UnsafeArchiveError(archive, name, f"links to the absolute path {target!r}")
    path = list(base)
    for i, p in enumerate(parts := _parts(target)):
        if p == "..":
            if not path:
                raise UnsafeArchiveError(archive, name, f"links to {target!r}, outside the destination")
            path.pop()
        else:
            path.append(p)
            if i < len(parts) - 1 and "/".join(path) in links:
                raise UnsafeArchiveError(archive, name, f"links to {target!r} through another symlink")


def _check_tar(archive, tf: tarfile.TarFile) -> None:
    members = tf.getmembers()
    links = {"/".join(_check_name(archive, m.name)) for m in members if m.issym()}
    for m in members:
        parts = _check_name(archive, m.name)
        if m.isdev():
            raise UnsafeArchiveError(archive, m.name, "is a device file or fifo")
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeArchiveError(archive, m.name, f"has an unsupported type {m.type!r}")
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise UnsafeArchiveError(archive, m.name, "lies under a symlink of the archive")
        if m.issym():
            _check_link(archive, m.name, parts[:-1], m.linkname, links)
        elif m.islnk():                              # hardlink targets are relative to the root
            _check_link(archive, m.name, (), m.linkname, links)


def _zip_is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_zip(archive, zf: zipfile.ZipFile) -> None:
    infos = zf.infolist()
    links = {"/".join(_check_name(archive, i.filename)) for i in infos if _zip_is_symlink(i)}
    for info in infos:
        parts = _check_name(archive, info.filename)
        if any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise UnsafeArchiveError(archive, info.filename, "lies under a symlink of the archive")
        if _zip_is_symlink(info):                    # zipfile writes it as a small text file,
            target = zf.read(info).decode("utf-8", "replace")   # but refuse escaping ones anyway
            _check_link(archive, info.filename, parts[:-1], target, links)


def _archive_kind(archive: Path) -> str:
    name = archive.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if zipfile.is_zipfile(archive):
        return "zip"
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ValueError(f"{archive}: not a tar or zip archive (expected .tgz, .tar.gz, .tar or .zip)")


def _extract_members(arc, kind: str, out: Path) -> None:
    """Write every (already checked) member under ``out``."""
    if kind == "tar" and hasattr(tarfile, "data_filter"):   # Python >= 3.11.4: a second guard
        arc.extractall(out, filter="data")
    else:
        arc.extractall(out)


def safe_extract(archive, dest) -> Path:
    """Extract a tar (.tgz/.tar.gz/.tar) or zip archive into folder ``dest``; return ``dest``.

    Every member is checked before anything is written: absolute paths, '..' components,
    symlinks/hardlinks whose target leaves ``dest`` and device files raise
    ``UnsafeArchiveError`` naming the member. Members go to a temporary folder next to
    ``dest`` first; its top-level entries then replace same-named entries of ``dest``
    (other files in ``dest`` are kept), so an interrupted extraction can be redone.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    kind = _archive_kind(archive)
    opener = zipfile.ZipFile if kind == "zip" else tarfile.open
    with opener(archive) as arc:
        (_check_zip if kind == "zip" else _check_tar)(archive, arc)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for stale in dest.parent.glob(f".{dest.name}.extract-*"):   # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
        try:
            tmp.chmod(0o755)
            _extract_members(arc, kind, tmp)
            if not dest.exists():
                os.replace(tmp, dest)
                return dest
            for entry in sorted(tmp.iterdir()):
                target = dest / entry.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif target.exists() or target.is_symlink():
                    target.unlink()
                os.replace(entry, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ----------------------------------------------------------------------------- dataset registry

@dataclass(frozen=True)
class RemoteFile:
    name: str                 # file name inside root/<dataset>/
    md5: str
    url: str | None = None    # None: no public source known to work, the user fetches it by hand
    extract: bool = True      # an archive to unpack into root/<dataset>/
    size: int | None = None   # bytes, where known (``download --list``)


@dataclass(frozen=True)
class DatasetInfo:
    name: str                 # registry key, also the folder name under root
    title: str
    files: tuple[RemoteFile, ...]
    homepage: str = ""
    note: str = ""            # why a manual download is needed, if it is


# Sources (docs/METHOD.md §3): CUB from its CaltechDATA record, the address public set-up scripts use
# today; Cars196 and SOP have no host known to work: their files are listed with md5 and fetched by
# hand; Omniglot from the authors' repository.
DATASETS: dict[str, DatasetInfo] = {
    "cub": DatasetInfo("cub", "CUB-200-2011", (
        RemoteFile("CUB_200_2011.tgz", "97eceeb196236b17998738112f37df78",
                   "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz", size=1150585339),),
        homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/"),
    "cars196": DatasetInfo("cars196", "Cars196 (Stanford Cars)", (
        RemoteFile("car_ims.tgz", "d5c8f0aa497503f355e17dc7886c3f14"),
        RemoteFile("cars_annos.mat", "b407c6086d669747186bd1d764ff9dbc", extract=False)),
        homepage="https://ai.stanford.edu/~jkrause/cars/car_dataset.html",
        note="its original host is gone and torchvision's StanfordCars(download=True) raises"),
    "sop": DatasetInfo("sop", "Stanford Online Products", (
        RemoteFile("Stanford_Online_Products.zip", "7f73d41a2f44250d4779881525aea32e"),),
        homepage="https://cvgl.stanford.edu/projects/lifted_struct/",
        note="its ftp address (ftp://cs.stanford.edu/cs/cvgl/) is no longer the one public set-up scripts "
             "use; get the zip through the project page https://cvgl.stanford.edu/projects/lifted_struct/ "
             "(pytorch-metric-learning and open-metric-learning fetch a copy from Google Drive, file id "
             "1TclrpQOF_ullUP99wk_gjGN8pKvtErG8; any copy with the md5 below will do)"),
    "omniglot": DatasetInfo("omniglot", "Omniglot", tuple(
        RemoteFile(f"{part}.zip", md5,
                   f"https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{part}.zip")
        for part, md5 in (("images_background", "68d2efa1b9178cc56df9314c21c6e718"),
                          ("images_evaluation", "6b91aef0f799c5bb55b94e3f2daec811"))),
        homepage="https://github.com/brendenlake/omniglot"),
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; an unknown name raises ValueError (one line) naming the valid
    ones. Call it before touching the file system: a mistyped name must not create folders."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)} "
                         f"(`python -m hdml_lite download --list` shows their files)")
    return DATASETS[name]


_info = dataset_info


def _size(n: int | None) -> str:
    if n is None:
        return "size unknown"
    return f"{n:,} bytes ({n / 2**30:.2f} GiB)" if n >= 2**30 else f"{n:,} bytes ({n / 2**20:.1f} MiB)"


def listing() -> list[str]:
    """Every data set's files with size (where known), md5 and URL, fetching nothing
    (``python -m hdml_lite download --list``)."""
    lines = []
    for info in DATASETS.values():
        how = "fetched by hand" if any(f.url is None for f in info.files) else "downloadable"
        lines.append(f"{info.name}: {info.title} ({how}; homepage {info.homepage})")
        for f in info.files:
            lines.append(f"    {f.name:<30} {_size(f.size):<30} md5 {f.md5}")
            lines.append(f"        url {f.url or f'none (fetch it by hand into <root>/{info.name}/)'}")
        if info.note:
            lines.append(f"    by hand: {info.note}")
    return lines


def manual_instructions(name: str, root) -> str:
    """Which files of dataset ``name`` to fetch by hand, with md5, and where to put them."""
    info, target = _info(name), Path(root) / name
    lines = [f"{info.title} cannot be downloaded automatically" + (f": {info.note}." if info.note else ".")]
    lines.append(f"Fetch these files by hand (check each md5) and put them in {target}/:")
    lines += [f"    {f.name:<32} md5 {f.md5}" for f in info.files]
    lines.append(f"then run `python -m hdml_lite download {name}` again to verify and extract them.")
    if name == "cars196":
        lines.append(f"torchvision's layout is accepted too: {target}/stanford_cars/ with cars_train/, "
                     "cars_test/, devkit/cars_meta.mat, devkit/cars_train_annos.mat and "
                     "cars_test_annos_withlabels.mat (as torchvision.datasets.StanfordCars expects).")
    if name == "sop":
        lines.append(f"An unpacked copy is accepted too: {target}/Stanford_Online_Products/ with Ebay_train.txt "
                     "and Ebay_test.txt.")
    return "\n".join(lines)


def _already_there(name: str, target: Path) -> bool:
    """Data placed by hand in a layout the reader accepts (only for manual datasets)."""
    if name == "cars196":
        return (target / "stanford_cars" / "devkit").is_dir() or \
            ((target / "car_ims").is_dir() and (target / "cars_annos.mat").is_file())
    if name == "sop":
        return (target / "Stanford_Online_Products" / "Ebay_train.txt").is_file()
    return False


def _marked(target: Path, f) -> bool:
    """File ``f`` of a dataset was checked and extracted before (its marker holds its md5)."""
    marker = target / f".{f.name}.ok"
    return marker.is_file() and marker.read_text().strip() == f.md5


def download_dataset(name: str, root, progress: bool = True, keep_archives: bool = False,
                     info: DatasetInfo | None = None) -> Path:
    """Download, verify and extract dataset ``name`` into ``root/<name>/``; return that folder.

    A file is skipped once its marker ``.<file>.ok`` exists (written after a successful
    md5 check and extraction). Downloaded archives are deleted after extraction unless
    ``keep_archives``; files placed by hand are never deleted. Datasets without a public
    source (cars196, sop) raise ``ManualDownloadError`` until their files are in place.
    info: another source for ``name`` (default: the registry's; the paper-protocol notebook's
    smoke mode passes a tiny local archive in CUB's layout, ``hdml_lite.data.tiny``).
    """
    info = dataset_info(name) if info is None else info
    target = Path(root) / name
    if any(f.url is None for f in info.files) and _already_there(name, target):
        return target
    if any(f.url is None for f in info.files) and not target.is_dir():
        raise ManualDownloadError(manual_instructions(name, root))   # nothing placed yet: no folder is made
    target.mkdir(parents=True, exist_ok=True)
    for f in info.files:
        marker = target / f".{f.name}.ok"
        if _marked(target, f):
            continue
        path = target / f.name
        if f.url is None:
            if not path.is_file():
                raise ManualDownloadError(manual_instructions(name, root))
            actual = md5sum(path)
            if actual != f.md5:
                raise ChecksumError(path, f.md5, actual, removed=False)
        else:
            download(f.url, path, f.md5, progress=progress)
        if f.extract:
            safe_extract(path, target)
            if f.url is not None and not keep_archives:
                path.unlink()
        marker.write_text(f.md5 + "\n")
    return target
