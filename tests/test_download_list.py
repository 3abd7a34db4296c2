"""`python -m hdml_lite download --list` (offline: every data set's files, sizes, md5 and URL) and the
name check that comes before any folder is made (issue 23, fault 11: `download cubb --root X`)."""
import pytest

from hdml_lite import cli
from hdml_lite.data import download as dl
from hdml_lite.data.download import DATASETS, dataset_info, listing

CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to fetch or extract fails the test."""
    def refuse(*a, **k):
        raise AssertionError("--list must not fetch or extract anything")

    for name in ("download", "safe_extract", "_fetch"):
        monkeypatch.setattr(dl, name, refuse)
    monkeypatch.setattr("urllib.request.urlopen", refuse)


def test_list_prints_every_file_md5_and_the_cub_url(offline, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_DATA", str(tmp_path / "data"))
    assert cli.main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    assert CUB_URL in out and "1,150,585,339 bytes" in out
    for info in DATASETS.values():
        assert f"{info.name}: {info.title}" in out
        for f in info.files:
            assert f.name in out and f.md5 in out
            assert (f.url or f"fetch it by hand into <root>/{info.name}/") in out
    assert "ftp://cs.stanford.edu/cs/cvgl/Stanford_Online_Products.zip" not in out   # the dead address is gone
    assert not (tmp_path / "data").exists()        # nothing created


def test_listing_marks_the_manual_data_sets():
    text = "\n".join(listing())
    assert "cub: CUB-200-2011 (downloadable" in text
    assert "sop: Stanford Online Products (fetched by hand" in text and "cars196: Cars196 (Stanford Cars) (fetched by hand" in text
    assert "cvgl.stanford.edu/projects/lifted_struct" in text


def test_unknown_name_is_refused_before_the_root_is_created(tmp_path, capsys):
    root = tmp_path / "X"
    assert cli.main(["download", "cubb", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown dataset 'cubb'" in err and "cub" in err
    assert not root.exists()


def test_download_without_a_name_says_what_to_give(capsys):
    assert cli.main(["download"]) == 2
    assert "--list" in capsys.readouterr().err


def test_dataset_info_names_the_valid_sets():
    assert dataset_info("cub").files[0].url == CUB_URL
    with pytest.raises(ValueError, match="expected one of cub, cars196, sop, omniglot"):
        dataset_info("cubb")


def test_sop_by_hand_lists_file_md5_and_folder(tmp_path):
    with pytest.raises(dl.ManualDownloadError) as err:
        dl.download_dataset("sop", tmp_path / "data", progress=False)
    msg = str(err.value)
    for needle in ("Stanford_Online_Products.zip", "7f73d41a2f44250d4779881525aea32e", str(tmp_path / "data" / "sop")):
        assert needle in msg


def test_sop_unpacked_by_hand_is_accepted(tmp_path):
    target = tmp_path / "data" / "sop" / "Stanford_Online_Products"
    target.mkdir(parents=True)
    (target / "Ebay_train.txt").write_text("image_id class_id super_class_id path\n")
    assert dl.download_dataset("sop", tmp_path / "data", progress=False) == tmp_path / "data" / "sop"


@pytest.mark.parametrize("name", ["sop", "cars196"])
def test_a_set_fetched_by_hand_makes_no_folder_before_its_files_are_there(tmp_path, capsys, name):
    root = tmp_path / "X"
    assert cli.main(["download", name, "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "by hand" in err and "md5" in err
    assert not root.exists()                       # the message says where to put them; nothing is made
