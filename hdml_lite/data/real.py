"""Readers for the real datasets (METHOD §3), each returning ``(train, test)`` Splits.

Zero-shot splits: train and test classes are disjoint. With the full datasets:

    cub       classes 1-100 train (5,864 images), 101-200 test (5,924)   train_test_split.txt ignored
    cars196   classes 1-98 train (8,054), 99-196 test (8,131)            original or torchvision layout
    sop       Ebay_train.txt (11,318 classes), Ebay_test.txt (11,316)
    omniglot  images_background (964 characters) train, images_evaluation (659) test
    folder    one sub-folder per class: first half train, second half test, or a split file

Folders are scanned without hidden files and folders (``.DS_Store``, ``._<name>``) and without the
``__MACOSX/`` folder that macOS adds to the zips it makes.

For CUB and Cars the split is "first half of the class ids / second half", so a smaller
copy in the same layout splits the same way. Paths are absolute; labels are 0..C-1
within each split and index ``class_names``. ``root`` may be the dataset's own folder,
the folder that contains it, or the ``root`` given to ``download_dataset`` (which puts
the data in ``root/<name>/``).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .base import Split, relabel
from .download import manual_instructions

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")  # matched case-insensitively


class DatasetError(Exception):
    """Base class of the readers' errors."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset folder is missing; the message says how to get it."""


class MissingIndexFileError(DatasetError, FileNotFoundError):
    """A required index/annotation file of the dataset is missing."""


class MissingImageError(DatasetError, FileNotFoundError):
    """An index lists an image file that does not exist."""


class DatasetFormatError(DatasetError, ValueError):
    """A malformed index line or field, a label out of range, or a class with no images."""


# ----------------------------------------------------------------------------- helpers

def _how_to_get(name: str, root) -> str:
    if name in ("cars196", "sop"):          # no public host known to work: the files, md5 and folder
        return manual_instructions(name, root)
    return (f"Download it with `python -m hdml_lite download {name}` (from Python: "
            f"hdml_lite.data.download.download_dataset({name!r}, {str(root)!r}), which puts it in "
            f"{Path(root) / name}/, where this reader looks too).")


def _locate(name: str, root, folder: str, index: str) -> Path:
    """The first of root, root/folder, root/name/folder, root/name that holds ``index``."""
    root = Path(os.path.abspath(root))
    candidates = list(dict.fromkeys([root, root / folder, root / name / folder, root / name]))
    for c in candidates:
        if (c / index).is_file():
            return c
    for c in candidates:                   # the dataset folder is there, its index is not
        if c.name == folder and c.is_dir():
            raise MissingIndexFileError(f"required index file missing: {c / index}")
    raise DatasetNotFoundError(f"{name} not found: no {folder}/{index} under {root} (looked in "
                               f"{', '.join(str(c) for c in candidates)}).\n{_how_to_get(name, root)}")


def _text_lines(path: Path, what: str = "index file") -> list[str]:
    """The lines of a text file read as UTF-8 (a UTF-8 byte-order mark is dropped); a file in another
    encoding raises ``DatasetFormatError`` naming the file, the line and the encoding expected."""
    data = path.read_bytes()
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline=None).read().split("\n")   # as open() reads lines
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        looks = (" (it starts with a UTF-16 byte-order mark: saved as UTF-16, Windows' \"Unicode\")"
                 if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "")
        raise DatasetFormatError(
            f"{what} {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} cannot be decoded"
            f"{looks}; save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8 old.txt > {path.name}`, or \"UTF-8\" in "
            f"the editor's save dialog)") from None


def _table(path: Path, fmt: str, ints: tuple[int, ...] = (), header: bool = False) -> list[tuple[int, list]]:
    """Rows ``(line number, fields)`` of a space-separated index file whose lines read ``fmt``
    (e.g. "<image_id> <path>"); the last field may contain spaces. ``header``: the first
    non-empty line must be ``fmt`` itself."""
    if not path.is_file():
        raise MissingIndexFileError(f"required index file missing: {path}")
    names = fmt.split()
    rows = []
    for lineno, line in enumerate(_text_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        if header:
            if line.split() != names:
                raise DatasetFormatError(f"{path}, line {lineno}: expected the header {fmt!r}, got {line!r}")
            header = False
            continue
        parts = line.split(maxsplit=len(names) - 1)
        if len(parts) != len(names):
            raise DatasetFormatError(f"{path}, line {lineno}: expected {len(names)} space-separated "
                                     f"fields {fmt!r}, got {line!r}")
        for i in ints:
            try:
                parts[i] = int(parts[i])
            except ValueError:
                raise DatasetFormatError(f"{path}, line {lineno}: {names[i].strip('<>')} must be an integer "
                                         f"(line format {fmt!r}), got {parts[i]!r}") from None
        rows.append((lineno, parts))
    return rows


def _check_exist(paths: list[str], source) -> None:
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise MissingImageError(f"{len(missing)} of the {len(paths)} image files listed in {source} do "
                                f"not exist; the first: {missing[0]}")


def _split_by_class(paths: list[str], classes: list[int], class_names: list[str]) -> tuple[Split, Split]:
    """Classes are 1..C; 1..C//2 go to train, the rest to test; labels restart at 0 in each split."""
    n_train = len(class_names) // 2
    train, test = Split([], [], class_names[:n_train]), Split([], [], class_names[n_train:])
    for p, c in zip(paths, classes):
        split, label = (train, c - 1) if c <= n_train else (test, c - 1 - n_train)
        split.paths.append(p)
        split.labels.append(label)
    return train, test


# what macOS adds to a folder it zips: "__MACOSX/" (with "._<name>" resource forks of every file, which
# carry the image's extension but are no image) and ".DS_Store"; hidden files and folders are skipped too
IGNORED_FOLDERS = ("__MACOSX",)


def _ignored_file(p: Path) -> bool:
    """Hidden files: ``.DS_Store``, macOS's ``._<name>`` resource forks, editors' ``.<name>.swp``."""
    return p.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not _ignored_file(p))


def _too_high(folder: Path, who: str = "it") -> str:
    """A hint when ``folder`` holds sub-folders with images (data.root one level above the class folders)."""
    deeper = [d for d in _subfolders(folder) if _image_files(d)]
    if not deeper:
        return ""
    return f"; {who} holds sub-folders with images ({deeper[0].name}/, ...): is data.root one level too high?"


def _images_in(folder: Path) -> list[str]:
    files = _image_files(folder)
    if not files:
        raise DatasetFormatError(f"class folder {folder} has no images (extensions {', '.join(IMAGE_EXTENSIONS)})"
                                 + _too_high(folder))
    return [str(p) for p in files]


CACHE_FOLDER = "hdml_cache"       # data.cache=auto's folder inside the dataset root (cache.py): not a class


def _subfolders(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                   and d.name != CACHE_FOLDER and d.name not in IGNORED_FOLDERS), key=lambda d: d.name)


# ----------------------------------------------------------------------------- CUB-200-2011

def read_cub(root, check_files: bool = True) -> tuple[Split, Split]:
    """CUB-200-2011: classes 1-100 train, 101-200 test (the first/second half of classes.txt)."""
    base = _locate("cub", root, "CUB_200_2011", "images.txt")
    class_rows = _table(base / "classes.txt", "<class_id> <class_name>", ints=(0,))
    n = len(class_rows)
    names = [None] * n
    for lineno, (cid, cname) in class_rows:
        if not 1 <= cid <= n or names[cid - 1] is not None:
            raise DatasetFormatError(f"{base / 'classes.txt'}, line {lineno}: class_id {cid} is out of range or "
                                     f"repeated (expected each of 1..{n} once)")
        names[cid - 1] = cname
    label_file = base / "image_class_labels.txt"
    label_of = {}
    for lineno, (iid, cid) in _table(label_file, "<image_id> <class_id>", ints=(0, 1)):
        if not 1 <= cid <= n:
            raise DatasetFormatError(f"{label_file}, line {lineno}: class_id {cid} is out of range 1..{n} "
                                     f"(classes.txt lists {n} classes)")
        label_of[iid] = cid
    paths, classes, seen = [], [], set()
    for lineno, (iid, rel) in _table(base / "images.txt", "<image_id> <relative_path>", ints=(0,)):
        if iid in seen:
            raise DatasetFormatError(f"{base / 'images.txt'}, line {lineno}: image_id {iid} is repeated")
        if iid not in label_of:
            raise DatasetFormatError(f"{label_file}: no class for image_id {iid} (images.txt, line {lineno})")
        seen.add(iid)
        paths.append(str(base / "images" / rel))
        classes.append(label_of[iid])
    if check_files:
        _check_exist(paths, base / "images.txt")
    return _split_by_class(paths, classes, names)


# ----------------------------------------------------------------------------- Cars196

def _loadmat(path: Path) -> dict:
    if not path.is_file():
        raise MissingIndexFileError(f"required annotation file missing: {path}")
    import scipy.io  # comes with scikit-learn
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as e:
        raise DatasetFormatError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from e


def _mat_var(mat: dict, path: Path, var: str):
    if var not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise DatasetFormatError(f"{path}: variable {var!r} missing (found: {found or 'none'})")
    return mat[var]


def _struct_field(mat: dict, path: Path, var: str, field: str) -> list:
    arr = np.atleast_1d(_mat_var(mat, path, var))
    if arr.dtype.names is None or field not in arr.dtype.names:
        raise DatasetFormatError(f"{path}: struct {var!r} has no field {field!r} "
                                 f"(fields: {', '.join(arr.dtype.names or ()) or 'none'})")
    return list(arr[field])


def _class_ids(values: list, path: Path, var: str, n: int) -> list[int]:
    out = []
    for i, v in enumerate(values):
        try:
            c = int(v)
        except (TypeError, ValueError):
            raise DatasetFormatError(f"{path}: {var}[{i}].class must be an integer, got {v!r}") from None
        if not 1 <= c <= n:
            raise DatasetFormatError(f"{path}: {var}[{i}].class = {c} is out of range 1..{n}")
        out.append(c)
    return out


def _names(mat: dict) -> list[str] | None:
    return None if "class_names" not in mat else [str(x) for x in np.atleast_1d(mat["class_names"])]


def _cars_original(base: Path) -> tuple[list[str], list[int], list[str], Path]:
    path = base / "cars_annos.mat"
    mat = _loadmat(path)
    rel = _struct_field(mat, path, "annotations", "relative_im_path")
    raw = _struct_field(mat, path, "annotations", "class")
    names = _names(mat)
    n = len(names) if names is not None else max((int(c) for c in raw), default=0)
    classes = _class_ids(raw, path, "annotations", n)
    names = names or [f"class_{i:03d}" for i in range(1, n + 1)]
    return [str(base / str(r)) for r in rel], classes, names, path


def _cars_torchvision(base: Path) -> tuple[list[str], list[int], list[str], Path]:
    devkit = base / "devkit"
    meta = devkit / "cars_meta.mat"
    names = [str(x) for x in np.atleast_1d(_mat_var(_loadmat(meta), meta, "class_names"))]
    tests = [base / "cars_test_annos_withlabels.mat", devkit / "cars_test_annos_withlabels.mat",
             devkit / "cars_test_annos.mat"]
    test_annos = next((p for p in tests if p.is_file()), None)
    if test_annos is None:
        raise MissingIndexFileError(f"required annotation file missing: {tests[0]} (torchvision's labelled "
                                    f"test annotations; {devkit}/cars_test_annos.mat has no labels)")
    paths, classes = [], []
    for annos, folder in ((devkit / "cars_train_annos.mat", base / "cars_train"), (test_annos, base / "cars_test")):
        mat = _loadmat(annos)
        if annos.name == "cars_test_annos.mat" and "class" not in (
                np.atleast_1d(mat.get("annotations", [])).dtype.names or ()):
            raise DatasetFormatError(f"{annos}: struct 'annotations' has no field 'class' (the devkit's test "
                                     f"annotations are unlabelled); put cars_test_annos_withlabels.mat in {base}")
        fnames = _struct_field(mat, annos, "annotations", "fname")
        classes += _class_ids(_struct_field(mat, annos, "annotations", "class"), annos, "annotations", len(names))
        paths += [str(folder / str(f)) for f in fnames]
    return paths, classes, names, devkit


def read_cars196(root, check_files: bool = True) -> tuple[Split, Split]:
    """Cars196: classes 1-98 train, 99-196 test. Original layout (car_ims/ + cars_annos.mat) or
    torchvision's stanford_cars/ (cars_train/, cars_test/, devkit/), merged into 196 classes."""
    root = Path(os.path.abspath(root))
    originals = list(dict.fromkeys([root, root / "cars196"]))
    torchvisions = list(dict.fromkeys([root, root / "stanford_cars", root / "cars196" / "stanford_cars"]))
    base = next((c for c in originals if (c / "cars_annos.mat").is_file()), None)
    if base is not None:
        paths, classes, names, source = _cars_original(base)
        if check_files and not (base / "car_ims").is_dir():
            raise MissingImageError(f"image folder missing: {base / 'car_ims'} (extract car_ims.tgz into {base})")
    else:
        base = next((c for c in torchvisions if (c / "devkit").is_dir()), None)
        if base is None:
            raise DatasetNotFoundError(
                f"cars196 not found: no cars_annos.mat in {' or '.join(map(str, originals))} and no devkit/ in "
                f"{' or '.join(map(str, torchvisions))}.\n{_how_to_get('cars196', root)}")
        paths, classes, names, source = _cars_torchvision(base)
    if check_files:
        _check_exist(paths, source)
    return _split_by_class(paths, classes, names)


# ----------------------------------------------------------------------------- Stanford Online Products

def read_sop(root, check_files: bool = True) -> tuple[Split, Split]:
    """Stanford Online Products: Ebay_train.txt / Ebay_test.txt, class ids relabelled 0..C-1.
    Class names read "<super-class folder>/<class_id>", e.g. "bicycle_final/1"."""
    base = _locate("sop", root, "Stanford_Online_Products", "Ebay_train.txt")
    splits = []
    for file in ("Ebay_train.txt", "Ebay_test.txt"):
        path = base / file
        rows = _table(path, "image_id class_id super_class_id path", ints=(0, 1, 2), header=True)
        for lineno, (_, cid, sid, _) in rows:
            for field, v in (("class_id", cid), ("super_class_id", sid)):
                if v < 1:
                    raise DatasetFormatError(f"{path}, line {lineno}: {field} {v} is out of range (ids start at 1)")
        labels, values = relabel([cid for _, (_, cid, _, _) in rows])
        folder = {cid: rel.replace("\\", "/").split("/")[0] for _, (_, cid, _, rel) in reversed(rows)}
        paths = [str(base / rel) for _, (_, _, _, rel) in rows]
        if check_files:
            _check_exist(paths, path)
        splits.append(Split(paths, labels.tolist(), [f"{folder[int(v)]}/{int(v)}" for v in values]))
    return splits[0], splits[1]


# ----------------------------------------------------------------------------- Omniglot

def read_omniglot(root, check_files: bool = True) -> tuple[Split, Split]:
    """Omniglot: images_background/<alphabet>/<character>/*.png train, images_evaluation test;
    class names "alphabet/character"."""
    root = Path(os.path.abspath(root))
    candidates = list(dict.fromkeys([root, root / "omniglot", root / "omniglot-py"]))
    parts = ("images_background", "images_evaluation")
    base = next((c for c in candidates if any((c / p).is_dir() for p in parts)), None)
    if base is None:
        raise DatasetNotFoundError(f"omniglot not found: no images_background/ or images_evaluation/ in "
                                   f"{', '.join(map(str, candidates))}.\n{_how_to_get('omniglot', root)}")
    splits = []
    for part in parts:
        folder = base / part
        if not folder.is_dir():
            raise DatasetNotFoundError(f"omniglot folder missing: {folder} (both {parts[0]}/ and {parts[1]}/ are "
                                       f"needed).\n{_how_to_get('omniglot', root)}")
        split = Split([], [], [])
        for alphabet in _subfolders(folder):
            for character in _subfolders(alphabet):
                files = _images_in(character)
                split.paths += files
                split.labels += [len(split.class_names)] * len(files)
                split.class_names.append(f"{alphabet.name}/{character.name}")
        if not split.class_names:
            raise DatasetFormatError(f"{folder} holds no <alphabet>/<character>/ folders")
        splits.append(split)
    return splits[0], splits[1]


# ----------------------------------------------------------------------------- a folder of class folders

def _read_split_file(split_file, root: Path, folders: dict[str, Path]) -> dict[str, str]:
    """Split file format: one line per class, "<class_folder_name> train|test"; blank lines and
    lines starting with '#' are ignored; class folders not listed are left out."""
    path = Path(split_file)
    if not path.is_absolute() and not path.exists() and (root / path).exists():
        path = root / path
    if not path.is_file():
        raise MissingIndexFileError(f"split file missing: {path}")
    assign = {}
    for lineno, line in enumerate(_text_lines(path, "split file (data.split_file)"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2 or parts[1] not in ("train", "test"):
            raise DatasetFormatError(f"{path}, line {lineno}: expected '<class_folder_name> train|test', got {line!r}")
        name, which = parts
        if name not in folders:
            raise DatasetFormatError(f"{path}, line {lineno}: class folder {name!r} not found in {root}")
        if name in assign:
            raise DatasetFormatError(f"{path}, line {lineno}: class folder {name!r} is listed twice")
        assign[name] = which
    return assign


def read_folder(root, split_file: str = "", check_files: bool = True) -> tuple[Split, Split]:
    """Images in ``root/<class>/`` (jpg, jpeg, png, bmp, gif, webp; any case), classes sorted by
    folder name. Without ``split_file`` the first half of the classes (C // 2) is train and the
    rest test; with it, each listed class goes where its line says (see ``_read_split_file``)."""
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder not found: {root} (expected one sub-folder per class, "
                                   f"e.g. {root}/<class>/<image>.jpg)")
    folders = {d.name: d for d in _subfolders(root)}
    if split_file:
        assign = _read_split_file(split_file, root, folders)
        groups = [[n for n in folders if assign.get(n) == w] for w in ("train", "test")]
    else:
        if len(folders) < 2:
            only = next(iter(folders.values()), None)
            hint = _too_high(only, f"{only.name}/") if only is not None else ""
            raise DatasetFormatError(f"{root}: found {len(folders)} class folder(s), need at least 2 "
                                     f"(one sub-folder per class){hint}")
        names = list(folders)
        groups = [names[:len(names) // 2], names[len(names) // 2:]]
    splits = []
    for which, names in zip(("train", "test"), groups):
        if not names:
            raise DatasetFormatError(f"{root}: no class assigned to the {which} split")
        split = Split([], [], list(names))
        for label, name in enumerate(names):
            files = _images_in(folders[name])
            split.paths += files
            split.labels += [label] * len(files)
        splits.append(split)
    return splits[0], splits[1]


# ----------------------------------------------------------------------------- dispatch

READERS = {"cub": read_cub, "cars196": read_cars196, "sop": read_sop, "omniglot": read_omniglot,
           "folder": read_folder}


def read_dataset(name: str, root, split_file: str = "", check_files: bool = True) -> tuple[Split, Split]:
    """``READERS[name](root)`` -> (train, test); ``split_file`` is for the "folder" reader only."""
    if name not in READERS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(READERS)}")
    if name == "folder":
        return read_folder(root, split_file, check_files=check_files)
    if split_file:
        raise ValueError(f"split_file is only used by the 'folder' reader, not by {name!r}")
    return READERS[name](root, check_files=check_files)
