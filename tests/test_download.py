"""md5, resumable download (file:// and a local HTTP server with Range support), safe extraction,
and download_dataset against a monkeypatched registry. No internet needed."""
import hashlib
import http.server
import io
import socket
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from hdml_lite.data import download as dl
from hdml_lite.data.download import (DATASETS, ChecksumError, DatasetInfo, DownloadError, ManualDownloadError,
                                     RemoteFile, UnsafeArchiveError, download, download_dataset, md5sum,
                                     safe_extract)

DATA = bytes(range(256)) * 8  # 2 KiB payload
DATA_MD5 = hashlib.md5(DATA).hexdigest()


# ----------------------------------------------------------------------------- a local HTTP server

class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-`` unless ``server.honor_range`` is off;
    ``server.cut_after`` closes the connection after that many body bytes (a dropped download)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append(self.headers.get("Range"))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.honor_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if srv.cut_after is None else body[:srv.cut_after])


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests, srv.honor_range, srv.cut_after = {"/data.bin": DATA}, [], True, None
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# ----------------------------------------------------------------------------- md5 and download

def test_md5sum_matches_hashlib_across_chunks(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(DATA)
    assert md5sum(p, chunk_size=7) == DATA_MD5 == md5sum(p)


def test_download_file_url_verifies_and_renames(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(DATA)
    dest = tmp_path / "out" / "data.bin"
    assert download(src.as_uri(), dest, md5=DATA_MD5, progress=False) == dest
    assert dest.read_bytes() == DATA
    assert not dest.with_name("data.bin.part").exists()


def test_download_md5_mismatch_removes_file_and_names_it(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(DATA)
    dest = tmp_path / "data.bin"
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as err:
        download(src.as_uri(), dest, md5=wrong, progress=False)
    msg = str(err.value)
    assert str(dest) in msg and wrong in msg and DATA_MD5 in msg
    assert not dest.exists() and not dest.with_name("data.bin.part").exists()


def test_download_keeps_a_good_existing_file_without_fetching(tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA)
    # an unreachable URL: any fetch attempt would raise DownloadError
    assert download("http://127.0.0.1:9/none", dest, md5=DATA_MD5, progress=False) == dest
    assert dest.read_bytes() == DATA


def test_download_resumes_part_with_range(tmp_path, server):
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(DATA[:300])
    download(server.url + "/data.bin", dest, md5=DATA_MD5, progress=False)
    assert server.requests == ["bytes=300-"]
    assert dest.read_bytes() == DATA


def test_download_restarts_cleanly_when_server_ignores_range(tmp_path, server):
    server.honor_range = False
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(b"X" * 300)   # not a prefix of DATA
    download(server.url + "/data.bin", dest, md5=DATA_MD5, progress=False)
    assert server.requests == ["bytes=300-"]
    assert dest.read_bytes() == DATA


def test_download_dropped_connection_is_resumed_next_time(tmp_path, server):
    dest = tmp_path / "data.bin"
    url = server.url + "/data.bin"
    server.cut_after = 700
    with pytest.raises(DownloadError) as err:
        download(url, dest, md5=DATA_MD5, progress=False)
    assert url in str(err.value) and str(dest) in str(err.value)
    part = dest.with_name("data.bin.part")
    assert part.read_bytes() == DATA[:700] and not dest.exists()
    server.cut_after = None
    download(url, dest, md5=DATA_MD5, progress=False)
    assert server.requests == [None, "bytes=700-"]
    assert dest.read_bytes() == DATA and not part.exists()


def test_download_complete_part_answered_416_is_finished(tmp_path, server):
    dest = tmp_path / "data.bin"
    dest.with_name("data.bin.part").write_bytes(DATA)
    download(server.url + "/data.bin", dest, md5=DATA_MD5, progress=False)
    assert server.requests == [f"bytes={len(DATA)}-"]
    assert dest.read_bytes() == DATA


def test_download_http_error_names_url_and_where_to_put_the_file(tmp_path, server):
    dest = tmp_path / "missing.bin"
    url = server.url + "/missing.bin"
    with pytest.raises(DownloadError) as err:
        download(url, dest, md5=DATA_MD5, progress=False)
    msg = str(err.value)
    assert url in msg and "404" in msg and str(dest) in msg and DATA_MD5 in msg
    assert not dest.exists()


def test_download_connection_refused_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.tgz"
    with pytest.raises(DownloadError, match="by hand") as err:
        download(url, tmp_path / "x.tgz", progress=False, timeout=5)
    assert url in str(err.value)


# ----------------------------------------------------------------------------- safe extraction

def _tar(path: Path, members, mode="w:gz"):
    """members: (TarInfo, bytes or None)."""
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"hello"):
    return tarfile.TarInfo(name), data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info, None


def _no_temp_left(parent: Path):
    return not [p for p in parent.iterdir() if ".extract-" in p.name]


@pytest.mark.parametrize("suffix", ["tgz", "tar", "zip"])
def test_safe_extract_roundtrip_keeps_other_files(tmp_path, suffix):
    archive = tmp_path / f"pkg.{suffix}"
    files = {"pkg/a.txt": b"a", "pkg/sub/b.txt": b"b", "top.txt": b"t"}
    if suffix == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        _tar(archive, [_file(n, d) for n, d in files.items()], "w:gz" if suffix == "tgz" else "w")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    assert safe_extract(archive, dest) == dest
    for name, data in files.items():
        assert (dest / name).read_bytes() == data
    assert (dest / "keep.txt").read_text() == "mine"
    assert _no_temp_left(tmp_path)


def test_safe_extract_into_new_folder(tmp_path):
    archive = _tar(tmp_path / "x.tar.gz", [_file("d/f.txt", b"x")])
    dest = tmp_path / "new" / "dest"
    safe_extract(archive, dest)
    assert (dest / "d" / "f.txt").read_bytes() == b"x"
    assert _no_temp_left(dest.parent)


UNSAFE_TAR = {
    "absolute": ([_file("/abs.txt")], "/abs.txt"),
    "dotdot": ([_file("../evil.txt")], "../evil.txt"),
    "inner_dotdot": ([_file("a/../../evil.txt")], "a/../../evil.txt"),
    "symlink_escapes": ([_link("d/link", "../../outside")], "d/link"),
    "symlink_absolute": ([_link("link", "/etc/passwd")], "link"),
    "hardlink_escapes": ([_link("hard", "../outside", tarfile.LNKTYPE)], "hard"),
    # x/y/d is the root once extracted, so x/l = root/.. although "x/y/d/.." reads as x/y
    "through_symlink": ([_link("x/y/d", "../.."), _link("x/l", "y/d/..")], "x/l"),
    "under_symlink": ([_link("x/y/d", "../.."), _link("x/y/d/l", "../..")], "x/y/d/l"),
    "device": ([_device("dev")], "dev"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE_TAR))
def test_safe_extract_refuses_unsafe_tar_members(tmp_path, case):
    members, bad = UNSAFE_TAR[case]
    archive = _tar(tmp_path / "bad.tgz", [_file("ok.txt")] + members)
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest)
    assert repr(bad) in str(err.value) and err.value.member == bad
    assert not dest.exists()                     # nothing written, not even the safe member
    assert _no_temp_left(tmp_path)


def _zip_with(path: Path, name: str, data=b"x", symlink=False):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.txt", b"ok")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize("name,data,symlink", [("/abs.txt", b"x", False), ("../evil.txt", b"x", False),
                                               ("sub/link", b"../../outside", True)])
def test_safe_extract_refuses_unsafe_zip_members(tmp_path, name, data, symlink):
    archive = _zip_with(tmp_path / "bad.zip", name, data, symlink)
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="member") as err:
        safe_extract(archive, dest)
    assert name in str(err.value)
    assert not dest.exists()


def test_safe_extract_interrupted_then_redone(tmp_path, monkeypatch):
    archive = _tar(tmp_path / "pkg.tgz", [_file("pkg/a.txt", b"a"), _file("pkg/b.txt", b"b")])
    dest = tmp_path / "out"
    dest.mkdir()
    real = dl._extract_members

    def crash(arc, kind, out):
        (out / "pkg").mkdir()
        (out / "pkg" / "a.txt").write_bytes(b"a")
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_extract_members", crash)
    with pytest.raises(KeyboardInterrupt):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == [] and _no_temp_left(tmp_path)
    # a stale partial folder in dest (e.g. from an older tool) is replaced, not merged
    (dest / "pkg").mkdir()
    (dest / "pkg" / "junk.txt").write_text("junk")
    monkeypatch.setattr(dl, "_extract_members", real)
    safe_extract(archive, dest)
    assert sorted(p.name for p in (dest / "pkg").iterdir()) == ["a.txt", "b.txt"]


# ----------------------------------------------------------------------------- download_dataset

def test_registry_holds_the_spec_sources():
    cub = DATASETS["cub"].files[0]
    assert (cub.name, cub.md5) == ("CUB_200_2011.tgz", "97eceeb196236b17998738112f37df78")
    assert cub.url == "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"   # the record in use
    sop = DATASETS["sop"].files[0]
    assert sop.url is None                         # no host known to work: fetched by hand (the old ftp is gone)
    assert sop.md5 == "7f73d41a2f44250d4779881525aea32e"
    omni = {f.name: f.md5 for f in DATASETS["omniglot"].files}
    assert omni == {"images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
                    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811"}
    assert all(f.url.startswith("https://raw.githubusercontent.com/brendenlake/omniglot/master/python/")
               for f in DATASETS["omniglot"].files)
    cars = {f.name: (f.md5, f.url) for f in DATASETS["cars196"].files}
    assert cars == {"car_ims.tgz": ("d5c8f0aa497503f355e17dc7886c3f14", None),
                    "cars_annos.mat": ("b407c6086d669747186bd1d764ff9dbc", None)}


@pytest.fixture
def toy_registry(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    archive = _tar(tmp_path / "src" / "toy.tgz", [_file("toy_data/a.txt", b"a"), _file("toy_data/sub/b.txt", b"b")])
    info = DatasetInfo("toy", "Toy", (RemoteFile("toy.tgz", md5sum(archive), archive.as_uri()),))
    monkeypatch.setitem(DATASETS, "toy", info)
    return archive


def test_download_dataset_downloads_extracts_and_skips_next_time(tmp_path, toy_registry, monkeypatch):
    root = tmp_path / "data"
    target = download_dataset("toy", root, progress=False)
    assert target == root / "toy"
    assert (target / "toy_data" / "sub" / "b.txt").read_bytes() == b"b"
    assert (target / ".toy.tgz.ok").is_file()
    assert not (target / "toy.tgz").exists()       # archive removed after extraction

    def no_network(*a, **k):
        raise AssertionError("download called although the dataset is already there")

    monkeypatch.setattr(dl, "download", no_network)
    monkeypatch.setattr(dl, "safe_extract", no_network)
    assert download_dataset("toy", root, progress=False) == target


def test_download_dataset_bad_md5_leaves_no_marker(tmp_path, toy_registry, monkeypatch):
    info = DATASETS["toy"]
    monkeypatch.setitem(DATASETS, "toy", DatasetInfo("toy", "Toy", (RemoteFile("toy.tgz", "f" * 32,
                                                                                 info.files[0].url),)))
    with pytest.raises(ChecksumError, match="f" * 32):
        download_dataset("toy", tmp_path / "data", progress=False)
    assert sorted(p.name for p in (tmp_path / "data" / "toy").iterdir()) == []


def test_download_dataset_cars196_says_what_to_fetch(tmp_path):
    with pytest.raises(ManualDownloadError) as err:
        download_dataset("cars196", tmp_path / "data", progress=False)
    msg = str(err.value)
    for needle in ("car_ims.tgz", "d5c8f0aa497503f355e17dc7886c3f14", "cars_annos.mat",
                   "b407c6086d669747186bd1d764ff9dbc", str(tmp_path / "data" / "cars196"), "stanford_cars"):
        assert needle in msg


def test_download_dataset_cars196_verifies_and_extracts_files_put_by_hand(tmp_path, monkeypatch):
    target = tmp_path / "data" / "cars196"
    target.mkdir(parents=True)
    tgz = _tar(target / "car_ims.tgz", [_file("car_ims/000001.jpg", b"jpg")])
    mat = target / "cars_annos.mat"
    mat.write_bytes(b"not really a mat file")
    files = (RemoteFile("car_ims.tgz", md5sum(tgz)), RemoteFile("cars_annos.mat", md5sum(mat), extract=False))
    monkeypatch.setitem(DATASETS, "cars196", DatasetInfo("cars196", "Cars196", files))
    assert download_dataset("cars196", tmp_path / "data", progress=False) == target
    assert (target / "car_ims" / "000001.jpg").read_bytes() == b"jpg"
    assert tgz.exists() and mat.exists()           # files placed by hand are never deleted
    assert (target / ".car_ims.tgz.ok").exists() and (target / ".cars_annos.mat.ok").exists()


def test_download_dataset_cars196_bad_manual_file_is_kept_and_reported(tmp_path, monkeypatch):
    target = tmp_path / "data" / "cars196"
    target.mkdir(parents=True)
    (target / "car_ims.tgz").write_bytes(b"truncated")
    with pytest.raises(ChecksumError, match="d5c8f0aa497503f355e17dc7886c3f14"):
        download_dataset("cars196", tmp_path / "data", progress=False)
    assert (target / "car_ims.tgz").exists()


def test_download_dataset_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="cub"):
        download_dataset("imagenet", tmp_path)
