"""The faults a new-user trial found (issue 18): nothing lost, nothing silently wrong.

Each test reproduces the trial's case: a truncated archive offline, a resume on other data, two
runs on one out_dir, ``study lab --jobs -1``, ImageNet weights offline, HDML_DATA a file or
read-only, a full disk while checkpointing, a tensor of the wrong shape, NaN weights at eval,
Ctrl-C during train and demo."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hdml_lite.cli import main
from hdml_lite.config import apply_overrides
from hdml_lite.presets import get_preset
from hdml_lite.training.checkpoint import load_checkpoint, save_checkpoint
from hdml_lite.training.trainer import train

from conftest import TINY
from test_download import DATA, DATA_MD5, _file, _tar, server  # noqa: F401  (server: a fixture)

REPO = Path(__file__).resolve().parents[1]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("error: "), err
    return err


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ----------------------------------------------------------------------------- 1. a partial download is kept

def _refused_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/toy.tgz"


def test_truncated_archive_offline_is_kept_as_part_and_said(tmp_path, monkeypatch, capsys):
    from hdml_lite.data import download as dl

    full = _tar(tmp_path / "full.tgz", [_file("toy_data/a.txt", os.urandom(4000)), _file("toy_data/b.txt", b"b")])
    blob = full.read_bytes()
    target = tmp_path / "data" / "toy"
    target.mkdir(parents=True)
    (target / "toy.tgz").write_bytes(blob[:len(blob) // 2])          # the trial: a truncated archive in place
    monkeypatch.setitem(dl.DATASETS, "toy", dl.DatasetInfo("toy", "Toy", (
        dl.RemoteFile("toy.tgz", dl.md5sum(full), _refused_url()),)))   # and no network
    assert main(["download", "toy", "--root", str(tmp_path / "data")]) == 2
    err = _one_error_line(capsys)
    part = target / "toy.tgz.part"
    assert part.read_bytes() == blob[:len(blob) // 2], "the partial archive must be kept"
    assert f"it was kept as {part} ({len(blob) // 2} bytes), which the next run resumes" in err
    assert "by hand" in err and str(target / "toy.tgz") in err


def test_kept_part_is_resumed_once_the_network_is_back(tmp_path, server):  # noqa: F811
    from hdml_lite.data.download import download

    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA[:500])                                      # truncated, under the final name
    with pytest.raises(Exception, match="kept as"):
        download(_refused_url(), dest, md5=DATA_MD5, progress=False, timeout=5)
    assert not dest.exists() and dest.with_name("data.bin.part").stat().st_size == 500
    download(server.url + "/data.bin", dest, md5=DATA_MD5, progress=False)
    assert server.requests == ["bytes=500-"], "the kept bytes are continued, not fetched again"
    assert dest.read_bytes() == DATA and not dest.with_name("data.bin.part").exists()


def test_a_larger_part_wins_and_the_damaged_file_is_left_untouched(tmp_path):
    from hdml_lite.data.download import DownloadError, download

    dest, part = tmp_path / "data.bin", tmp_path / "data.bin.part"
    dest.write_bytes(DATA[:100])
    part.write_bytes(DATA[:900])
    with pytest.raises(DownloadError, match="left untouched"):
        download(_refused_url(), dest, md5=DATA_MD5, progress=False, timeout=5)
    assert dest.read_bytes() == DATA[:100] and part.read_bytes() == DATA[:900]
    dest.write_bytes(DATA)                    # fetched by hand as the message says: the part is now useless
    download(_refused_url(), dest, md5=DATA_MD5, progress=False)
    assert dest.read_bytes() == DATA and not part.exists()


# ----------------------------------------------------------------------------- 4. resume on other data

def _image_folder(root: Path, classes: int = 8, per_class: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / f"c{c}" / f"{i}.png")
    return root


def _folder_run(tmp_path, root: Path, extra=()):
    return TINY + ["data.dataset=folder", f"data.root={root}", "train.steps=4", "train.eval_every=0",
                   f"train.out_dir={tmp_path / 'run'}", *extra]


def test_resume_on_other_data_is_refused_naming_the_folder(tmp_path, capsys):
    a = _image_folder(tmp_path / "a")
    b = _image_folder(tmp_path / "b", seed=1)             # same classes and counts, other images
    shutil.rmtree(b / "c2")
    _image_folder(tmp_path / "tmp", classes=1, per_class=2, seed=2)
    shutil.move(tmp_path / "tmp" / "c0", b / "c2")        # class c2 holds 2 images instead of 3
    assert main(["train", "--preset", "lab_npair", *_folder_run(tmp_path, a)]) == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["data"]["kind"] == "files" and state["data"]["splits"]["train"]["files"] == 12
    capsys.readouterr()
    assert main(["train", "--preset", "lab_npair", *_folder_run(tmp_path, b)]) == 2
    err = _one_error_line(capsys)
    assert "was trained on other data" in err and f"folder {b / 'c2'}" in err, err
    assert "held 3 files" in err and "now 2 files" in err and f"trained on the data in {a}" in err
    assert "data.root" in err and "--no-resume" in err
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 4, "nothing is overwritten"


def test_same_files_with_other_content_sizes_are_refused_too(tmp_path, capsys):
    a = _image_folder(tmp_path / "a")
    assert main(["train", "--preset", "lab_npair", *_folder_run(tmp_path, a)]) == 0
    Image.new("RGB", (64, 64), (9, 9, 9)).save(a / "c5" / "1.png")   # one test image replaced
    capsys.readouterr()
    assert main(["train", "--preset", "lab_npair", *_folder_run(tmp_path, a)]) == 2
    err = _one_error_line(capsys)
    assert f"folder {a / 'c5'} (test split)" in err, err


def test_the_same_data_moved_elsewhere_still_resumes(tmp_path, capsys):
    a = _image_folder(tmp_path / "a")
    assert main(["train", "--preset", "lab_npair", *_folder_run(tmp_path, a)]) == 0
    moved = tmp_path / "elsewhere" / "a"
    shutil.move(a, moved)                                  # data.root is not part of the identity
    capsys.readouterr()
    assert main(["train", "--preset", "lab_npair", *_folder_run(tmp_path, moved)]) == 0
    assert "resumed from" in capsys.readouterr().out


def test_old_checkpoint_without_fingerprint_resumes_with_a_note(tmp_path, tiny_overrides, capsys):
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.steps=4", "train.eval_every=0"])
    train(cfg)
    path = Path(cfg.train.out_dir) / "checkpoint.pt"
    state = load_checkpoint(path)
    assert state["data"]["kind"] == "glyphs" and state["data"]["glyphs_version"] >= 2
    del state["data"]                                       # as written by an older hdml_lite
    save_checkpoint(path, state)
    capsys.readouterr()
    train(cfg)
    out = capsys.readouterr().out
    assert "written before runs recorded their data" in out and "resumed from" in out
    assert "data" in load_checkpoint(path), "the next checkpoint records the fingerprint"


def test_glyph_fingerprint_is_the_generation_parameters():
    from hdml_lite.data.fingerprint import check_resume_data, data_fingerprint, fingerprint_mismatch
    from hdml_lite.data.glyphs import GLYPHS_VERSION

    fp = data_fingerprint(get_preset("lab_npair").data, {})
    assert fp["kind"] == "glyphs" and fp["glyphs_version"] == GLYPHS_VERSION
    assert (fp["per_class"], fp["size"]) == (48, 32)
    older = {**fp, "glyphs_version": GLYPHS_VERSION - 1}
    assert f"embedded glyphs changed (glyphs_version {GLYPHS_VERSION - 1} -> {GLYPHS_VERSION})" in \
        fingerprint_mismatch(older, fp)
    with pytest.raises(ValueError, match="trained on other data"):
        check_resume_data(older, fp, "runs/x/checkpoint.pt")
    assert fingerprint_mismatch(fp, dict(fp)) is None


# ----------------------------------------------------------------------------- 5. one run per out_dir

_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"pid={os.getpid()}\\ncommand=python -m hdml_lite train (the first run)\\n".encode())
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_second_run_on_one_out_dir_is_refused_naming_the_holder(tmp_path, tiny_overrides, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", "--preset", "lab_npair", *tiny_overrides, "train.seed=1"]) == 2
        err = _one_error_line(capsys)
        assert f"is in use by process {holder.pid} (python -m hdml_lite train (the first run))" in err, err
        assert "train.out_dir" in err and str(out / ".lock") in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"], "the refused run wrote nothing"
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed, as by SIGKILL): its lock is stale and taken over
    assert main(["train", "--preset", "lab_npair", *tiny_overrides, "train.steps=2", "train.eval_every=0"]) == 0
    assert f"took over the lock of process {holder.pid}" in capsys.readouterr().out
    assert not (out / ".lock").exists(), "the lock is released on exit"


def test_two_trainings_at_once_one_refused(tmp_path, tiny_overrides):
    """The trial's case: two `train` processes with different seeds on one out_dir. The second is
    refused while the first runs; the first's results are its own."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hdml_lite", "train", "--preset", "lab_npair", *tiny_overrides,
           "train.steps=100000", "train.eval_every=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd + ["train.seed=1"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_for([out / ".lock"], first)
        second = subprocess.run(cmd + ["train.seed=2"], cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=300)
        assert first.poll() is None, "the first run should still be training"
        assert second.returncode == 2, second.stderr[-2000:]
        err = second.stderr.strip()
        assert err.count("\n") == 0 and f"is in use by process {first.pid} (python -m hdml_lite train" in err, err
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=240)
    assert first.returncode == 130
    assert load_checkpoint(out / "checkpoint.pt")["config"]["train"]["seed"] == 1
    assert not (out / ".lock").exists()


def test_stale_lock_file_without_flock_support(tmp_path, monkeypatch, capsys):
    """Where fcntl is missing, the PID in the file decides: live refuses, dead is taken over."""
    from hdml_lite.training import lock

    monkeypatch.setattr(lock, "fcntl", None)
    out = tmp_path / "run"
    out.mkdir()
    (out / ".lock").write_text(f"pid={_dead_pid()}\n")
    with lock.out_dir_lock(out) as path:
        assert lock.read_lock(path)["pid"] == str(os.getpid())
    assert "which no longer runs" in capsys.readouterr().out and not (out / ".lock").exists()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(f"pid={sleeper.pid}\n")
        with pytest.raises(lock.OutDirLockedError, match=f"in use by process {sleeper.pid}"):
            with lock.out_dir_lock(out):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()


# ----------------------------------------------------------------------------- 7. study lab --jobs

def test_study_jobs_must_be_zero_or_more(capsys):
    from hdml_lite.study.__main__ import main as study_main

    assert study_main(["lab", "--jobs", "-1", "--plan"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--jobs=-1: expected 0 (in-process) or a number of parallel processes >= 1" in err
    assert study_main(["lab", "--jobs", "0", "--plan"]) == 0


# ----------------------------------------------------------------------------- 8. ImageNet weights offline

@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HDML_WEIGHTS", raising=False)
    calls = []

    def no_network(url, *a, **k):
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return calls


def test_imagenet_weights_offline_fail_with_one_line(offline_hub, tmp_path, capsys):
    from hdml_lite.models import build_backbone
    from hdml_lite.models.lab_weights import PretrainedWeightsError

    with pytest.raises(PretrainedWeightsError) as err:
        build_backbone("googlenet", pretrained=True)
    msg = str(err.value)
    url = "https://download.pytorch.org/models/googlenet-1378be20.pth"
    assert offline_hub == [url]
    for needle in (url, "could not be fetched", "URLError", str(tmp_path / "torch" / "hub" / "checkpoints"),
                   "model.weights_path=/path/to/googlenet-1378be20.pth", "model.pretrained=false"):
        assert needle in msg, needle
    # the trial's case through the command line: exit 2, one line, no run folder, no random start
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, "model.backbone=googlenet", "model.pretrained=true",
                 f"train.out_dir={out}"]) == 2
    assert "could not be fetched" in _one_error_line(capsys) and not out.exists()


def test_weights_source_and_sha256_are_recorded(offline_hub, tmp_path, monkeypatch, tiny_overrides):
    from hdml_lite.models import build_backbone
    from hdml_lite.models.backbones import weights_record
    from hdml_lite.models.lab_weights import LAB_WEIGHTS, sha256

    import torchvision.models as tvm

    path = tmp_path / "googlenet.pth"
    torch.save(tvm.googlenet(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    bb = build_backbone("googlenet", pretrained=True, weights_path=str(path))
    assert weights_record(bb) == {"backbone": "googlenet", "pretrained": True, "source": str(path),
                                  "file": str(path), "sha256": sha256(path),
                                  "tensors_loaded": sum(not k.startswith("aux") for k in torch.load(path))}
    # from torchvision's cache: the source is the URL, the sha256 that of the cached file
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "googlenet-1378be20.pth"
    cached.parent.mkdir(parents=True)
    shutil.copy(path, cached)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url",
                        lambda url, *a, **k: torch.load(cached, weights_only=True))
    info = weights_record(build_backbone("googlenet", pretrained=True))
    assert info["source"].startswith("https://download.pytorch.org/") and info["sha256"] == sha256(cached)
    assert weights_record(build_backbone("googlenet", pretrained=False))["pretrained"] is False
    # the lab's own pretrained small CNN: in metrics.json and the checkpoint
    cfg = apply_overrides(get_preset("lab_npair"), tiny_overrides + ["model.width=16", "model.pretrained=true",
                                                                      "train.steps=2", "train.eval_every=0"])
    res = train(cfg)
    rec = json.loads((res.out_dir / "metrics.json").read_text())["weights"]
    assert rec["sha256"] == LAB_WEIGHTS[16][1] and "small_cnn_w16_glyphs.pt" in rec["source"]
    assert load_checkpoint(res.out_dir / "checkpoint.pt")["weights"] == rec
    scratch = train(apply_overrides(get_preset("lab_npair"), tiny_overrides + [
        "train.steps=2", "train.eval_every=0", f"train.out_dir={tmp_path / 'scratch'}"]))
    assert json.loads((scratch.out_dir / "metrics.json").read_text())["weights"]["pretrained"] is False


# ----------------------------------------------------------------------------- messages: HDML_DATA

def test_hdml_data_a_regular_file_is_named_before_any_work(tmp_path, monkeypatch, capsys):
    from hdml_lite.data import glyphs

    def never(*a, **k):
        raise AssertionError("drew the glyphs although the data folder cannot hold them")

    monkeypatch.setattr(glyphs, "generate_glyphs", never)
    f = tmp_path / "a_file"
    f.write_text("x")
    monkeypatch.setenv("HDML_DATA", str(f))
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={out}"]) == 2
    err = _one_error_line(capsys)
    assert f"HDML_DATA={str(f)!r} is a regular file, not a folder" in err, err
    assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={out}", f"data.root={f / 'sub'}"]) == 2
    assert f"data.root={str(f / 'sub')!r} is not a folder" in _one_error_line(capsys)
    monkeypatch.setenv("HDML_DATA", str(f / "cub_data"))
    assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={out}", "data.dataset=cub"]) == 2
    assert "HDML_DATA=" in _one_error_line(capsys)


def test_read_only_hdml_data_is_named_before_drawing(tmp_path, monkeypatch, capsys):
    from hdml_lite.data import glyphs, paths

    def never(*a, **k):
        raise AssertionError("drew the glyphs although the data folder is read-only")

    ro = tmp_path / "ro"
    ro.mkdir()
    real_mkstemp, cache = tempfile.mkstemp, glyphs.cache_path(paths.data_root())

    def read_only(*a, dir=None, **k):                     # a read-only file system at ro (root ignores chmod)
        if dir is not None and Path(dir).resolve() == ro.resolve():
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkstemp(*a, dir=dir, **k)

    monkeypatch.setattr(glyphs, "generate_glyphs", never)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setenv("HDML_DATA", str(ro))
    assert main(["train", "--preset", "lab_npair", *TINY, f"train.out_dir={tmp_path / 'run'}"]) == 2
    err = _one_error_line(capsys)
    assert f"HDML_DATA={str(ro)!r} cannot be written to cache the embedded glyphs" in err, err
    assert "Read-only file system" in err
    if cache.is_file():   # a read-only folder that already holds the glyph cache is fine: nothing to write
        (ro / cache.name).symlink_to(cache)
        assert main(["train", "--preset", "lab_npair", *TINY, "train.steps=1", "train.eval_every=0",
                     f"train.out_dir={tmp_path / 'run'}"]) == 0


# ----------------------------------------------------------------------------- messages: a full disk

FULL_DISK = {
    "enospc": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "torch_enforce": lambda: RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),
}


@pytest.mark.parametrize("kind", sorted(FULL_DISK))
def test_full_disk_while_checkpointing_says_so_and_keeps_the_previous(tmp_path, monkeypatch, capsys, kind):
    real, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] >= 2:                                 # from the second checkpoint (step 4) on: the disk stays full
            f.write(b"partial bytes")
            raise FULL_DISK[kind]()
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, "train.eval_every=0", f"train.out_dir={out}"]) == 2
    err = _one_error_line(capsys)
    assert f"the disk is full: no space left in {out}" in err, err
    assert "the previous checkpoint.pt (step 2) is intact" in err and "run the same command again" in err
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert not list(out.glob("*.tmp"))
    assert calls["n"] == (2 if kind == "enospc" else 3)     # torch's message alone: one retry, then the verdict
    monkeypatch.setattr(torch, "save", real)                # space freed: the run resumes
    assert main(["train", "--preset", "lab_npair", *TINY, "train.eval_every=0", f"train.out_dir={out}"]) == 0
    assert "at step 2" in capsys.readouterr().out


def test_real_enospc_inside_torch_save_is_recognised(tmp_path):
    """torch turns its file's ENOSPC into "[enforce fail ...] unexpected pos": the cause is still named."""
    from hdml_lite.training.checkpoint import DiskFullError, atomic_write_bytes

    class FullFile:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, b):
            self.n += len(b)
            if self.n > 1000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(b)

        def flush(self):
            self.f.flush()

    path = tmp_path / "checkpoint.pt"
    with pytest.raises(DiskFullError) as err:
        atomic_write_bytes(path, lambda f: torch.save({"x": torch.zeros(10_000)}, FullFile(f)))
    assert "the disk is full" in str(err.value) and "torch:" not in str(err.value)
    assert "no earlier checkpoint.pt was there" in str(err.value) and not list(tmp_path.iterdir())
    assert err.value.errno == errno.ENOSPC


# ----------------------------------------------------------------------------- messages: wrong shape, NaN

def _trained(tmp_path, tiny_overrides):
    res = train(apply_overrides(get_preset("lab_npair"), tiny_overrides + ["train.steps=2", "train.eval_every=0"]))
    return res.out_dir / "checkpoint.pt"


def test_a_tensor_of_the_wrong_shape_is_named_with_both_shapes(tmp_path, tiny_overrides, capsys):
    path = _trained(tmp_path, tiny_overrides)
    state = load_checkpoint(path)
    state["method"]["modules"]["model"]["head.fc.weight"] = torch.zeros(9, 32)   # the model has (8, 32)
    save_checkpoint(path, state)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(path)]) == 2
    err = _one_error_line(capsys)
    assert "tensor model.head.fc.weight has shape (9, 32) in the checkpoint but (8, 32) in the model" in err, err
    assert "overrides" not in err, "no overrides were given"
    assert main(["eval", "--checkpoint", str(path), "train.eval_batch=64"]) == 2
    assert "the overrides train.eval_batch=64" in _one_error_line(capsys)
    assert main(["train", "--preset", "lab_npair", *tiny_overrides, "train.steps=2", "train.eval_every=0"]) == 2
    err = _one_error_line(capsys)
    assert "tensor model.head.fc.weight has shape (9, 32) in the checkpoint but (8, 32)" in err, err


def test_eval_of_nan_weights_names_the_checkpoint_before_embedding(tmp_path, tiny_overrides, capsys, monkeypatch):
    import hdml_lite.data as data

    path = _trained(tmp_path, tiny_overrides)
    state = load_checkpoint(path)
    state["method"]["modules"]["model"]["head.fc.weight"][0, 0] = float("nan")
    save_checkpoint(path, state)

    def no_data(*a, **k):
        raise AssertionError("read the data although the weights are NaN")

    monkeypatch.setattr(data, "load_dataset", no_data)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(path)]) == 2
    err = _one_error_line(capsys)
    assert f"checkpoint {str(path)!r} (step 2) holds NaN or inf weights (model.head.fc.weight)" in err, err


# ----------------------------------------------------------------------------- messages: Ctrl-C

def test_processes_started_by_the_tests_can_be_interrupted():
    """The Ctrl-C tests' premise: this process and the processes it starts handle SIGINT, even when
    the test run itself was started in the background with SIGINT ignored (conftest.py)."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    child = subprocess.run([sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is "
                            "signal.default_int_handler)"], capture_output=True, text=True, timeout=60)
    assert child.stdout.strip() == "True", child.stderr


def _wait_for(paths, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if all(p.is_file() for p in paths):
            return
        time.sleep(0.1)
    out, err = proc.communicate(timeout=5) if proc.poll() is not None else ("", "")
    raise AssertionError(f"no checkpoint appeared (exit {proc.returncode}): {err[-2000:]}")


def _check_interrupted(proc) -> str:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "leaked semaphore" not in err and "resource_tracker" not in err, err[-3000:]
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def test_ctrl_c_during_train_is_one_line_and_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "hdml_lite", "train", "--preset", "lab_npair", *TINY, "train.steps=100000",
           "train.eval_every=0", "data.num_workers=2", f"train.out_dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for([out / "checkpoint.pt"], proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    line = _check_interrupted(proc)
    saved = load_checkpoint(out / "checkpoint.pt")["step"]
    assert line.startswith("interrupted at step ") and \
        line.endswith(f"; the checkpoint at step {saved} is kept; run the same command to resume"), line
    assert int(line.split()[3].rstrip(";")) >= saved
    assert not (out / ".lock").exists()
    resumed = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and resumed.poll() is None:
        if load_checkpoint(out / "checkpoint.pt")["step"] > saved:
            break
        time.sleep(0.2)
    resumed.send_signal(signal.SIGINT)
    resumed_out, _ = resumed.communicate(timeout=240)
    assert f"resumed from {out / 'checkpoint.pt'} at step {saved}" in resumed_out


def test_ctrl_c_while_a_checkpoint_is_written_names_the_checkpoint_on_disk(tmp_path, monkeypatch, capsys):
    """Ctrl-C that lands inside a checkpoint write waits for it: the line names the step on disk
    (it once said "step 2 kept" with step 4 written, when the signal fell between the two)."""
    real, calls = torch.save, {"n": 0}

    def save(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:                                 # the second checkpoint (step 4)
            os.kill(os.getpid(), signal.SIGINT)
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    assert main(["train", "--preset", "lab_npair", *TINY, "train.steps=6", "train.eval_every=0",
                 f"train.out_dir={out}"]) == 130
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    saved = load_checkpoint(out / "checkpoint.pt")["step"]
    assert saved == 4 and err.endswith(f"the checkpoint at step 4 is kept; run the same command to resume"), err
    assert "interrupted at step 4;" in err, err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("group", [True, pytest.param(False, marks=pytest.mark.slow)],
                         ids=["ctrl_c_to_the_group", "sigint_to_the_parent"])
def test_ctrl_c_during_demo_is_one_line_without_leaks(tmp_path, group):
    """Ctrl-C in a terminal signals the demo and its two worker processes; `kill -INT <pid>` only
    the demo, which forwards it (slow: the same code path, ~30 s)."""
    from hdml_lite.demo import FAST

    out = tmp_path / "demo"
    tiny = [x for x in FAST if not x.startswith(("train.steps", "train.ckpt_every"))]
    cmd = [sys.executable, "-m", "hdml_lite", "demo", "--out", str(out), *tiny, "train.steps=100000",
           "train.ckpt_every=2", "train.eval_every=0"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _wait_for([out / n / "checkpoint.pt" for n in ("lab_npair", "lab_hdml_npair")], proc)
        if group:
            os.killpg(proc.pid, signal.SIGINT)              # what a terminal's Ctrl-C does
        else:
            proc.send_signal(signal.SIGINT)                  # kill -INT <pid>: the parent forwards it
        line = _check_interrupted(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for name in ("lab_npair", "lab_hdml_npair"):
        saved = load_checkpoint(out / name / "checkpoint.pt")["step"]
        assert f"{name} at step " in line and f"checkpoint at step {saved} kept" in line, line
    assert line.startswith("interrupted: ") and line.endswith("; run the same command to resume"), line


def test_an_interrupted_checkpoint_write_is_an_interrupt_not_a_full_disk(tmp_path):
    """Ctrl-C inside torch.save surfaces as torch's "unexpected pos": it must read as an interrupt
    (exit 130 in the CLI), and a one-off cut-short write is retried, not reported as a full disk."""
    from hdml_lite.training.checkpoint import atomic_write_bytes

    path = tmp_path / "checkpoint.pt"

    def interrupted(f):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, interrupted)
    calls = {"n": 0}

    def once(f):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
        torch.save({"x": torch.zeros(3)}, f)

    atomic_write_bytes(path, once)
    assert calls["n"] == 2 and torch.load(path)["x"].shape == (3,) and not list(tmp_path.glob("*.tmp"))
