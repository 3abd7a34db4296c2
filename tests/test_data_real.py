"""Real-dataset readers on tiny copies built in each dataset's real layout, and their errors."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from hdml_lite.data.base import ImageListDataset
from hdml_lite.data.real import (READERS, DatasetFormatError, DatasetNotFoundError, MissingImageError,
                                 MissingIndexFileError, read_cars196, read_cub, read_dataset, read_folder,
                                 read_omniglot, read_sop)


def _img(path: Path, value: int = 0, fmt: str = "PNG") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 5), (value, 2 * value % 256, 50)).save(path, format=fmt)
    return str(path)


def _check_split(split, n_classes: int, per_class: int):
    assert len(split.class_names) == n_classes
    assert sorted(set(split.labels)) == list(range(n_classes))
    assert np.bincount(split.labels).tolist() == [per_class] * n_classes
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in split.paths)


# ----------------------------------------------------------------------------- CUB

def make_cub(parent: Path, n_classes: int = 4, per_class: int = 2) -> Path:
    base = parent / "CUB_200_2011"
    classes, images, labels, split = [], [], [], []
    iid = 0
    for c in range(1, n_classes + 1):
        cname = f"{c:03d}.Bird_{c}"
        classes.append(f"{c} {cname}")
        for j in range(per_class):
            iid += 1
            rel = f"{cname}/Bird_{c}_{j}.jpg"
            _img(base / "images" / rel, 10 * c + j, "JPEG")
            images.append(f"{iid} {rel}")
            labels.append(f"{iid} {c}")
            split.append(f"{iid} 1")       # the classification split: all "train", must be ignored
    for name, lines in (("classes.txt", classes), ("images.txt", images), ("image_class_labels.txt", labels),
                        ("train_test_split.txt", split)):
        (base / name).write_text("\n".join(lines) + "\n")
    return base


@pytest.mark.parametrize("where", ["parent", "itself", "download_root"])
def test_cub_zero_shot_split(tmp_path, where):
    parent = tmp_path / "cub" if where == "download_root" else tmp_path
    base = make_cub(parent)
    root = {"parent": tmp_path, "itself": base, "download_root": tmp_path}[where]
    train, test = read_dataset("cub", root)
    _check_split(train, 2, 2)
    _check_split(test, 2, 2)
    assert train.class_names == ["001.Bird_1", "002.Bird_2"]
    assert test.class_names == ["003.Bird_3", "004.Bird_4"]
    assert test.paths[0] == str(base / "images" / "003.Bird_3" / "Bird_3_0.jpg") and test.labels[0] == 0
    x, y = ImageListDataset(train, transform=np.array)[3]  # end to end: the file opens
    assert tuple(x.shape) == (5, 6, 3) and y == 1


def test_cub_missing_dataset_says_how_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="python -m hdml_lite download cub"):
        read_cub(tmp_path / "nowhere")


def test_cub_missing_index_file_is_named(tmp_path):
    base = make_cub(tmp_path)
    (base / "image_class_labels.txt").unlink()
    with pytest.raises(MissingIndexFileError, match="image_class_labels.txt"):
        read_cub(tmp_path)


def test_cub_missing_images_txt_inside_dataset_folder_is_named(tmp_path):
    base = make_cub(tmp_path)
    (base / "images.txt").unlink()
    with pytest.raises(MissingIndexFileError, match="images.txt"):
        read_cub(tmp_path)


@pytest.mark.parametrize("bad,needle", [("9 x", "class_id must be an integer"), ("9", "expected 2 space-separated")])
def test_cub_malformed_line_names_file_and_line(tmp_path, bad, needle):
    base = make_cub(tmp_path)
    with open(base / "image_class_labels.txt", "a") as f:
        f.write(bad + "\n")
    with pytest.raises(DatasetFormatError, match=needle) as err:
        read_cub(tmp_path)
    assert "image_class_labels.txt, line 9" in str(err.value)


def test_cub_label_out_of_range(tmp_path):
    base = make_cub(tmp_path)
    lines = (base / "image_class_labels.txt").read_text().splitlines()
    lines[2] = "3 7"
    (base / "image_class_labels.txt").write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"line 3: class_id 7 is out of range 1\.\.4"):
        read_cub(tmp_path)


def test_cub_missing_image_is_named(tmp_path):
    base = make_cub(tmp_path)
    gone = base / "images" / "002.Bird_2" / "Bird_2_1.jpg"
    gone.unlink()
    with pytest.raises(MissingImageError, match="Bird_2_1.jpg"):
        read_cub(tmp_path)
    train, _ = read_cub(tmp_path, check_files=False)    # the check can be skipped
    assert str(gone) in train.paths


# ----------------------------------------------------------------------------- Cars196

def _struct(rows: list[dict]) -> np.ndarray:
    """A MATLAB 1xN struct array (what scipy.io.loadmat gives for the Cars annotations)."""
    arr = np.zeros((1, len(rows)), dtype=[(k, "O") for k in rows[0]])
    for i, row in enumerate(rows):
        arr[0, i] = tuple(np.array([[v]], dtype=np.uint8) if isinstance(v, int) else v for v in row.values())
    return arr


def _cell(names: list[str]) -> np.ndarray:
    return np.array(names, dtype=object).reshape(1, -1)


CAR_NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012", "Audi R8 Coupe 2012"]


def make_cars_original(root: Path, classes=(1, 1, 2, 2, 3, 3, 4, 4), drop_field: str = "") -> Path:
    rows = []
    for i, c in enumerate(classes, 1):
        rel = f"car_ims/{i:06d}.jpg"
        _img(root / rel, i, "JPEG")
        row = {"bbox_x1": 1, "bbox_y1": 1, "bbox_x2": 5, "bbox_y2": 4, "class": c, "relative_im_path": rel,
               "test": i % 2}
        row.pop(drop_field, None)
        rows.append(row)
    scipy.io.savemat(root / "cars_annos.mat", {"annotations": _struct(rows), "class_names": _cell(CAR_NAMES)})
    return root


def make_cars_torchvision(root: Path, train_classes=(1, 2, 3, 4), test_classes=(1, 2, 3, 4),
                          test_file="cars_test_annos_withlabels.mat", test_labels=True) -> Path:
    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    scipy.io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": _cell(CAR_NAMES)})
    for folder, annos, classes in (("cars_train", base / "devkit" / "cars_train_annos.mat", train_classes),
                                   ("cars_test", base / test_file, test_classes)):
        rows = []
        for i, c in enumerate(classes, 1):
            fname = f"{i:05d}.jpg"                     # the same names in both folders, as in the real data
            _img(base / folder / fname, i, "JPEG")
            row = {"bbox_x1": 1, "bbox_y1": 1, "bbox_x2": 5, "bbox_y2": 4, "class": c, "fname": fname}
            if folder == "cars_test" and not test_labels:
                row.pop("class")
            rows.append(row)
        scipy.io.savemat(annos, {"annotations": _struct(rows)})
    return base


@pytest.mark.parametrize("where", ["itself", "download_root"])
def test_cars196_original_layout(tmp_path, where):
    make_cars_original(tmp_path / "cars196" if where == "download_root" else tmp_path)
    train, test = read_cars196(tmp_path)
    _check_split(train, 2, 2)
    _check_split(test, 2, 2)
    assert train.class_names == CAR_NAMES[:2] and test.class_names == CAR_NAMES[2:]
    assert [Path(p).name for p in test.paths] == ["000005.jpg", "000006.jpg", "000007.jpg", "000008.jpg"]
    assert test.labels == [0, 0, 1, 1]
    assert tuple(ImageListDataset(test, transform=np.array)[0][0].shape) == (5, 6, 3)


@pytest.mark.parametrize("test_file", ["cars_test_annos_withlabels.mat", "devkit/cars_test_annos_withlabels.mat",
                                       "devkit/cars_test_annos.mat"])
def test_cars196_torchvision_layout_merges_train_and_test(tmp_path, test_file):
    base = make_cars_torchvision(tmp_path, train_classes=(1, 3, 4), test_classes=(2, 1, 4), test_file=test_file)
    train, test = read_dataset("cars196", tmp_path)
    assert train.class_names == CAR_NAMES[:2] and test.class_names == CAR_NAMES[2:]
    # train = classes 1, 2 from BOTH folders; test = classes 3, 4
    assert sorted(zip(train.paths, train.labels)) == sorted([
        (str(base / "cars_train" / "00001.jpg"), 0), (str(base / "cars_test" / "00001.jpg"), 1),
        (str(base / "cars_test" / "00002.jpg"), 0)])
    assert sorted(zip(test.paths, test.labels)) == sorted([
        (str(base / "cars_train" / "00002.jpg"), 0), (str(base / "cars_train" / "00003.jpg"), 1),
        (str(base / "cars_test" / "00003.jpg"), 1)])


def test_cars196_unlabelled_devkit_test_annotations(tmp_path):
    make_cars_torchvision(tmp_path, test_file="devkit/cars_test_annos.mat", test_labels=False)
    with pytest.raises(DatasetFormatError, match="cars_test_annos_withlabels.mat"):
        read_cars196(tmp_path)


def test_cars196_missing_test_annotations(tmp_path):
    base = make_cars_torchvision(tmp_path)
    (base / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(MissingIndexFileError, match="cars_test_annos_withlabels.mat"):
        read_cars196(tmp_path)


def test_cars196_missing_says_which_files_to_put_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        read_cars196(tmp_path)
    msg = str(err.value)
    for needle in ("car_ims.tgz", "d5c8f0aa497503f355e17dc7886c3f14", "cars_annos.mat",
                   "b407c6086d669747186bd1d764ff9dbc", str(tmp_path / "cars196"), "stanford_cars"):
        assert needle in msg


def test_cars196_missing_field_is_named(tmp_path):
    make_cars_original(tmp_path, drop_field="class")
    with pytest.raises(DatasetFormatError, match="cars_annos.mat: struct 'annotations' has no field 'class'"):
        read_cars196(tmp_path)


@pytest.mark.parametrize("bad", [0, 5])
def test_cars196_label_out_of_range(tmp_path, bad):
    make_cars_original(tmp_path, classes=(1, 2, bad, 4))
    with pytest.raises(DatasetFormatError, match=rf"annotations\[2\]\.class = {bad} is out of range 1\.\.4"):
        read_cars196(tmp_path)


def test_cars196_missing_image_is_named(tmp_path):
    make_cars_original(tmp_path)
    (tmp_path / "car_ims" / "000003.jpg").unlink()
    with pytest.raises(MissingImageError, match="000003.jpg"):
        read_cars196(tmp_path)


# ----------------------------------------------------------------------------- Stanford Online Products

HEADER = "image_id class_id super_class_id path"


def make_sop(parent: Path, train=((1, 1), (2, 1), (3, 1)), test=((4, 2), (6, 2)), per_class=2) -> Path:
    base = parent / "Stanford_Online_Products"
    folders = {1: "bicycle_final", 2: "chair_final"}
    iid = 0
    for file, classes in (("Ebay_train.txt", train), ("Ebay_test.txt", test)):
        lines = [HEADER]
        for cid, sid in classes:
            for j in range(per_class):
                iid += 1
                rel = f"{folders[sid]}/{cid}_{j}.JPG"
                _img(base / rel, iid, "JPEG")
                lines.append(f"{iid} {cid} {sid} {rel}")
        (base / file).write_text("\n".join(lines) + "\n")
    return base


def test_sop_relabels_classes_per_split(tmp_path):
    base = make_sop(tmp_path / "sop")
    train, test = read_sop(tmp_path)                    # found under root/sop/ too
    _check_split(train, 3, 2)
    _check_split(test, 2, 2)
    assert test.labels == [0, 0, 1, 1]                   # class ids 4, 6 -> 0, 1
    assert test.class_names == ["chair_final/4", "chair_final/6"]
    assert train.paths[0] == str(base / "bicycle_final" / "1_0.JPG")
    assert tuple(ImageListDataset(test, transform=np.array)[3][0].shape) == (5, 6, 3)


@pytest.mark.parametrize("line,needle", [
    ("13 7 2", "expected 4 space-separated fields"),
    ("13 seven 2 chair_final/x.JPG", "class_id must be an integer"),
    ("13 0 2 chair_final/4_0.JPG", "class_id 0 is out of range"),
])
def test_sop_malformed_line_names_file_and_line(tmp_path, line, needle):
    base = make_sop(tmp_path)
    with open(base / "Ebay_test.txt", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DatasetFormatError, match=needle) as err:
        read_sop(tmp_path)
    assert "Ebay_test.txt, line 6" in str(err.value)


def test_sop_bad_header(tmp_path):
    base = make_sop(tmp_path)
    text = (base / "Ebay_train.txt").read_text().replace(HEADER, "id class path")
    (base / "Ebay_train.txt").write_text(text)
    with pytest.raises(DatasetFormatError, match="Ebay_train.txt, line 1: expected the header"):
        read_sop(base)


def test_sop_missing_index_and_image(tmp_path):
    base = make_sop(tmp_path)
    (base / "chair_final" / "6_1.JPG").unlink()
    with pytest.raises(MissingImageError, match="6_1.JPG"):
        read_sop(tmp_path)
    (base / "Ebay_test.txt").unlink()
    with pytest.raises(MissingIndexFileError, match="Ebay_test.txt"):
        read_sop(tmp_path)


def test_sop_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="python -m hdml_lite download sop"):
        read_sop(tmp_path)


# ----------------------------------------------------------------------------- Omniglot

def make_omniglot(root: Path, per_char: int = 2) -> Path:
    layout = {"images_background": {"Greek": ["character01", "character02"], "Latin": ["character01"]},
              "images_evaluation": {"Atlantean": ["character01", "character02"]}}
    for part, alphabets in layout.items():
        for alphabet, chars in alphabets.items():
            for ch in chars:
                for j in range(per_char):
                    _img(root / part / alphabet / ch / f"{j:04d}_{j:02d}.png", j)
    return root


def test_omniglot_background_train_evaluation_test(tmp_path):
    make_omniglot(tmp_path / "omniglot")
    train, test = read_dataset("omniglot", tmp_path)
    _check_split(train, 3, 2)
    _check_split(test, 2, 2)
    assert train.class_names == ["Greek/character01", "Greek/character02", "Latin/character01"]
    assert test.class_names == ["Atlantean/character01", "Atlantean/character02"]
    assert train.labels == [0, 0, 1, 1, 2, 2]
    assert Path(train.paths[4]).parts[-3:] == ("Latin", "character01", "0000_00.png")


def test_omniglot_missing_part_is_named(tmp_path):
    make_omniglot(tmp_path)
    shutil.rmtree(tmp_path / "images_evaluation")
    with pytest.raises(DatasetNotFoundError, match="images_evaluation"):
        read_omniglot(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="python -m hdml_lite download omniglot"):
        read_omniglot(tmp_path / "empty")


def test_omniglot_character_without_images(tmp_path):
    make_omniglot(tmp_path)
    (tmp_path / "images_evaluation" / "Atlantean" / "character03").mkdir()
    with pytest.raises(DatasetFormatError, match="character03 has no images"):
        read_omniglot(tmp_path)


# ----------------------------------------------------------------------------- image folder

def make_folder(root: Path, names=("a", "b", "c", "d", "e")) -> Path:
    exts = [".jpg", ".PNG", ".Jpeg", ".bmp", ".GIF", ".webp"]
    for k, name in enumerate(names):
        _img(root / name / f"x{k}{exts[k % len(exts)]}", k)
        _img(root / name / f"y{k}{exts[(k + 1) % len(exts)]}", k)
        (root / name / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    return root


def test_folder_first_half_train_second_half_test(tmp_path):
    make_folder(tmp_path)
    train, test = read_folder(tmp_path)
    _check_split(train, 2, 2)
    _check_split(test, 3, 2)
    assert train.class_names == ["a", "b"] and test.class_names == ["c", "d", "e"]
    assert [Path(p).name for p in train.paths] == ["x0.jpg", "y0.PNG", "x1.PNG", "y1.Jpeg"]
    assert tuple(ImageListDataset(train, transform=np.array)[1][0].shape) == (5, 6, 3)


def test_folder_with_split_file(tmp_path):
    make_folder(tmp_path / "imgs")
    split_file = tmp_path / "split.txt"
    split_file.write_text("# class split\ne test\n\nb train\na train\n")
    train, test = read_dataset("folder", tmp_path / "imgs", split_file=str(split_file))
    assert train.class_names == ["a", "b"] and test.class_names == ["e"]
    assert test.labels == [0, 0] and Path(test.paths[0]).parent.name == "e"


@pytest.mark.parametrize("text,needle", [("a train\nb val\n", "line 2: expected '<class_folder_name> train|test'"),
                                         ("a train\nzebra test\n", "line 2: class folder 'zebra' not found"),
                                         ("a train\na test\n", "line 2: class folder 'a' is listed twice"),
                                         ("a train\nb train\n", "no class assigned to the test split")])
def test_folder_bad_split_file(tmp_path, text, needle):
    make_folder(tmp_path / "imgs")
    (tmp_path / "split.txt").write_text(text)
    with pytest.raises(DatasetFormatError, match=needle):
        read_folder(tmp_path / "imgs", str(tmp_path / "split.txt"))


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="one sub-folder per class"):
        read_folder(tmp_path / "nowhere")
    make_folder(tmp_path / "one", names=("a",))
    with pytest.raises(DatasetFormatError, match="need at least 2"):
        read_folder(tmp_path / "one")
    make_folder(tmp_path / "two", names=("a", "b"))
    with pytest.raises(MissingIndexFileError, match="nosuch.txt"):
        read_folder(tmp_path / "two", "nosuch.txt")
    (tmp_path / "two" / "c").mkdir()
    with pytest.raises(DatasetFormatError, match="has no images"):
        read_folder(tmp_path / "two")


# ----------------------------------------------------------------------------- dispatch

def test_read_dataset_dispatch(tmp_path):
    assert set(READERS) == {"cub", "cars196", "sop", "omniglot", "folder"}
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        read_dataset("mnist", tmp_path)
    make_cub(tmp_path)
    with pytest.raises(ValueError, match="only used by the 'folder' reader"):
        read_dataset("cub", tmp_path, split_file="split.txt")
