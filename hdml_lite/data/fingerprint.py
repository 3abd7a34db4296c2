"""A run's data fingerprint: what a checkpoint was trained on, so that a resume on other data is refused.

    fp = data_fingerprint(cfg.data, {"train": train_ds, "val": val_ds, "test": test_ds})
    problem = fingerprint_mismatch(saved_fp, fp)     # None when the data is the same

- Real and folder datasets: the image files of each split with their sizes and labels,
  relative to the folder that holds them all, so the same data moved elsewhere (another
  ``data.root``) has the same fingerprint. Per sub-folder counts and digests let a mismatch
  name the folder that changed. Only file sizes are read (no image is decoded or hashed) for
  that part. A content check that costs little comes with it (``"content"``): the sha256 of a
  fixed sample of files (the ``CONTENT_SAMPLE`` whose relative path hashes lowest: the same files
  for the same names, wherever the data lies) and every file's modification time (seconds). Same
  names and sizes but other pixels are refused, naming the changed files; a copy that did not keep
  the times (every time changed, the sampled contents equal) resumes with a note.
- The embedded glyphs: their generation version and parameters (they are drawn, not read).
- In-memory arrays of other origin: a digest of the pixels and labels.

The trainer stores the fingerprint in the checkpoint (``"data"``) and compares it on resume
(``training/trainer.py``); checkpoints written before fingerprints existed, or before the
content check, resume with a note.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

FINGERPRINT_VERSION = 1          # "content" (added later) is optional: older fingerprints compare without it
CONTENT_SAMPLE = 32              # files hashed for the content check
CONTENT_RULE = (f"sha256 of the {CONTENT_SAMPLE} files whose relative path has the lowest sha256; "
                f"mtime in whole seconds of every file, by relative path")


def _digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8", "surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def _glyphs_fingerprint() -> dict:
    from .glyphs import GLYPHS_VERSION

    # load_dataset draws the glyphs with load_glyphs' defaults (48 images of 32 x 32 per class)
    return {"kind": "glyphs", "glyphs_version": GLYPHS_VERSION, "per_class": 48, "size": 32}


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return "unreadable"
    return h.hexdigest()[:16]


def _content(files: dict[str, tuple[str, int]]) -> dict:
    """{relative path: (path, mtime s)} -> the content check: sampled files' sha256 and every mtime."""
    rels = sorted(files)
    by_hash = sorted(rels, key=lambda r: hashlib.sha256(r.encode("utf-8", "surrogateescape")).hexdigest())
    sample = sorted(by_hash[:CONTENT_SAMPLE])
    return {"rule": CONTENT_RULE, "sample": {r: _file_sha256(files[r][0]) for r in sample},
            "mtimes": {r: files[r][1] for r in rels}}


def _files_fingerprint(splits: dict) -> dict:
    paths = [os.path.abspath(p) for ds in splits.values() for p in ds.paths]
    if not paths:
        return {"kind": "files", "root": "", "splits": {}}
    root = os.path.commonpath(paths)
    if len(set(paths)) == 1:                   # one file: its folder holds the data
        root = os.path.dirname(root)
    out, files = {}, {}
    for name, ds in splits.items():
        folders: dict[str, list] = {}
        lines = []
        for path, label in zip(ds.paths, ds.labels):
            rel = Path(os.path.relpath(os.path.abspath(path), root)).as_posix()
            try:
                st = os.stat(path)
                size, mtime = st.st_size, int(st.st_mtime)
            except OSError:
                size, mtime = -1, -1
            files[rel] = (path, mtime)
            line = f"{rel}\t{size}\t{ds.class_names[int(label)]}"
            lines.append(line)
            folder = rel.rsplit("/", 1)[0] if "/" in rel else "."
            folders.setdefault(folder, []).append((line, size))
        out[name] = {"files": len(lines), "bytes": sum(max(0, s) for v in folders.values() for _, s in v),
                     "digest": _digest(sorted(lines)),
                     "folders": {f: [len(v), sum(max(0, s) for _, s in v), _digest(sorted(ln for ln, _ in v))]
                                 for f, v in sorted(folders.items())}}
    return {"kind": "files", "root": root, "splits": out, "content": _content(files)}


def _arrays_fingerprint(splits: dict) -> dict:
    out = {}
    for name, ds in splits.items():
        h = hashlib.sha256()
        h.update(ds.images.numpy().tobytes())
        h.update(bytes(str(list(map(int, ds.labels))), "ascii"))
        h.update("\n".join(map(str, ds.class_names)).encode())
        out[name] = {"images": int(len(ds.labels)), "digest": h.hexdigest()[:16]}
    return {"kind": "arrays", "splits": out}


def data_fingerprint(data_cfg, splits: dict) -> dict:
    """The fingerprint of the data a run uses: ``splits`` maps split names ("train", "val",
    "test") to the loaded datasets. A plain dict (stored in checkpoints)."""
    if data_cfg.dataset == "glyphs":
        fp = _glyphs_fingerprint()
    elif all(hasattr(ds, "paths") for ds in splits.values()):
        fp = _files_fingerprint(splits)
    elif all(hasattr(ds, "images") for ds in splits.values()):
        fp = _arrays_fingerprint(splits)
    else:
        fp = {"kind": "unknown"}
    return {"version": FINGERPRINT_VERSION, "dataset": data_cfg.dataset, **fp}   # fp never holds "version"


def _size(n: int) -> str:
    return f"{n:,} bytes"


def _folder_change(roots: tuple[str, str], split: str, old: dict, new: dict) -> str | None:
    """The first folder of ``split`` whose files differ, in words. roots: (then, now)."""
    names = sorted(set(old.get("folders", {})) | set(new.get("folders", {})))
    for f in names:
        a, b = old.get("folders", {}).get(f), new.get("folders", {}).get(f)
        if a == b:
            continue
        where = os.path.join(roots[1], f) if f != "." else roots[1]
        if a is None:
            return f"folder {where} is new in the {split} split ({b[0]} files)"
        if b is None:
            gone = os.path.join(roots[1] or roots[0], f) if f != "." else roots[1] or roots[0]
            return f"folder {gone} of the {split} split is gone (it held {a[0]} files)"
        if a[:2] != b[:2]:
            return (f"folder {where} ({split} split) held {a[0]} files ({_size(a[1])}), "
                    f"now {b[0]} files ({_size(b[1])})")
        return f"folder {where} ({split} split) holds the same number of files, but other names, sizes or labels"
    return None


def _paths(root: str, rels: list[str], n: int = 3) -> str:
    shown = [os.path.join(root, r) if root else r for r in rels[:n]]
    return ", ".join(shown) + (f" and {len(rels) - n} more" if len(rels) > n else "")


def content_mismatch(saved: dict, now: dict) -> tuple[str | None, str | None]:
    """(what changed, a note) from the content checks of two fingerprints whose names, sizes and
    labels agree: sampled files with another sha256, or files with another modification time.
    A copy that did not keep the times (every time changed, the sampled contents equal) is
    (None, note); a fingerprint without the content check is (None, None)."""
    a, b = saved.get("content"), now.get("content")
    if not isinstance(a, dict) or not isinstance(b, dict) or a.get("rule") != b.get("rule"):
        return None, None
    root = now.get("root", "")
    rels = sorted(b.get("sample", {}))
    changed = [r for r in rels if a.get("sample", {}).get(r) != b["sample"][r]]
    if changed:
        return (f"{len(changed)} of the {len(rels)} sampled files have the same name and size but other content "
                f"(sha256): {_paths(root, changed)}"), None
    old_t, new_t = a.get("mtimes", {}), b.get("mtimes", {})
    moved = [r for r in sorted(new_t) if r in old_t and old_t[r] != new_t[r]]
    if not moved:
        return None, None
    if len(moved) == len(new_t):
        return None, (f"note: every data file has another modification time than when the checkpoint was written "
                      f"(copied without keeping times?); the {len(rels)} sampled files have the same content: "
                      f"resuming")
    return (f"{len(moved)} of the {len(new_t)} files were modified since the checkpoint was written (same name "
            f"and size, another modification time): {_paths(root, moved)}"), None


def fingerprint_mismatch(saved: dict, now: dict) -> str | None:
    """None when ``saved`` and ``now`` describe the same data, else what changed, in words
    (naming the folder, or the files, that changed where there are some)."""
    if saved == now:
        return None
    base = fingerprint_mismatch_names(saved, now)
    return base if base is not None else content_mismatch(saved, now)[0]


def fingerprint_mismatch_names(saved: dict, now: dict) -> str | None:
    """``fingerprint_mismatch`` on the names, sizes and labels only (the content check left out)."""
    saved = {k: v for k, v in saved.items() if k != "content"}
    now = {k: v for k, v in now.items() if k != "content"}
    if saved == now:
        return None
    if saved.get("version") != now.get("version"):
        return None                            # another fingerprint recipe: nothing to compare
    if saved.get("dataset") != now.get("dataset"):
        return f"data.dataset was {saved.get('dataset')!r}, now {now.get('dataset')!r}"
    kind = now.get("kind")
    if saved.get("kind") != kind:
        return f"the data was read as {saved.get('kind')}, now as {kind}"
    if kind == "glyphs":
        diff = [f"{k} {saved.get(k)} -> {now.get(k)}" for k in ("glyphs_version", "per_class", "size")
                if saved.get(k) != now.get(k)]
        return f"the embedded glyphs changed ({', '.join(diff)})"
    old_splits, new_splits = saved.get("splits", {}), now.get("splits", {})
    for split in sorted(set(old_splits) | set(new_splits)):
        a, b = old_splits.get(split), new_splits.get(split)
        if a == b:
            continue
        if a is None or b is None:
            return f"the {split} split {'is new' if a is None else 'is gone'}"
        if kind == "files":
            roots = (saved.get("root", ""), now.get("root", ""))
            what = _folder_change(roots, split, a, b)
            return what or f"the files of the {split} split under {roots[1]} changed"
        return f"the images of the {split} split changed ({a.get('images')} -> {b.get('images')} images)"
    return None


class DataChangedError(ValueError):
    """A resume whose data differs from the data the checkpoint was trained on (one line)."""


def check_resume_data(saved: dict | None, now: dict, ckpt, data_root_key: str = "data.root") -> str | None:
    """Compare a checkpoint's fingerprint with the data of this run before resuming.

    Raises ``DataChangedError`` naming what changed (the folder or the files, where there are
    some). Returns a note to print when the checkpoint predates fingerprints (it resumes: nothing
    to compare) or the content check (names, sizes and labels compared), or when every file's
    time changed but the sampled contents did not (a copy), else None."""
    if not isinstance(saved, dict):
        return (f"note: {ckpt} was written before runs recorded their data (an older hdml_lite): resuming "
                f"without checking that it was trained on this data; its next checkpoint records it")
    problem = fingerprint_mismatch_names(saved, now)
    note = None
    if problem is None:
        problem, note = content_mismatch(saved, now)
        if problem is None and note is None and now.get("kind") == "files" and "content" not in saved:
            note = (f"note: {ckpt} was written before runs recorded their data's content (file hashes and times): "
                    f"compared the files' names, sizes and labels only; its next checkpoint records them")
    if problem is None:
        return note
    then = f" (it was trained on the data in {saved['root']})" if saved.get("root") and \
        saved.get("root") != now.get("root") else ""
    raise DataChangedError(f"{ckpt} was trained on other data: {problem}{then}; to resume it, point "
                           f"{data_root_key} at the data it was trained on, else use another train.out_dir or "
                           f"--no-resume to start over (overwrites it)")
