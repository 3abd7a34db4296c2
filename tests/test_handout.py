"""`python -m hdml_lite handout DIR`: the students' copy, without notebooks/solutions/, in one top-level
folder, zipped; and the zip is what Colab's set-up cell installs."""
import zipfile
from pathlib import Path

from hdml_lite.cli import main
from hdml_lite.handout import student_files

REPO = Path(__file__).resolve().parents[1]


def test_handout_writes_a_zip_without_solutions_in_one_folder(tmp_path, capsys):
    assert main(["handout", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    archive, folder = tmp_path / "out" / "hdml_lite_lab.zip", tmp_path / "out" / "hdml_lite_lab"
    assert f"wrote {archive}" in out and "without notebooks/solutions/" in out
    names = zipfile.ZipFile(archive).namelist()
    assert names and all(n.startswith("hdml_lite_lab/") for n in names)            # one top-level folder
    rel = {n.removeprefix("hdml_lite_lab/") for n in names}
    assert not [n for n in rel if "solutions" in n.split("/")[:2] or n.startswith("notebooks/solutions")]
    assert {f"notebooks/{p.name}" for p in (REPO / "notebooks").glob("*.ipynb")} <= rel
    assert (REPO / "notebooks" / "solutions").is_dir()                            # there is something to leave out
    assert {"pyproject.toml", "README.md", "hdml_lite/colab.py", "hdml_lite/__init__.py"} <= rel
    assert not [n for n in rel if n.startswith((".git/", "runs/")) or "__pycache__" in n]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == rel


def test_handout_refuses_to_overwrite_in_one_line(tmp_path, capsys):
    (tmp_path / "hdml_lite_lab.zip").write_text("an older copy")
    assert main(["handout", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hdml_lite_lab.zip exists already" in err
    assert (tmp_path / "hdml_lite_lab.zip").read_text() == "an older copy"
    assert not (tmp_path / "hdml_lite_lab").exists()


def test_without_git_the_same_rules_apply(tmp_path):
    root = tmp_path / "copy"
    for f in ("pyproject.toml", "README.md", "notebooks/00_setup.ipynb", "notebooks/solutions/00_sol.ipynb",
              "hdml_lite/__init__.py", "hdml_lite/weights/lab.pt", "hdml_lite/__pycache__/x.pyc", "runs/a/metrics.json",
              "data/README.md", "data/glyphs/cache.npz", ".ci/run", "scratch.pt", "results/runs.pt"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("x")
    assert sorted(student_files(root)) == ["README.md", "data/README.md", "hdml_lite/__init__.py",
                                           "hdml_lite/weights/lab.pt", "notebooks/00_setup.ipynb", "pyproject.toml",
                                           "results/runs.pt"]


def test_colab_setup_cell_installs_the_handout_zip(tmp_path, monkeypatch):
    from test_colab_setup import run_cell

    assert main(["handout", str(tmp_path / "ta")]) == 0
    content = tmp_path / "content"
    content.mkdir()
    (content / "hdml_lite_lab.zip").write_bytes((tmp_path / "ta" / "hdml_lite_lab.zip").read_bytes())
    ns, calls = run_cell(content, monkeypatch, cwd=content)
    root = (content / "hdml_lite_zip" / "hdml_lite_lab").resolve()
    assert [c[-1] for c in calls] == [str(root)] and Path.cwd() == root
    assert not (root / "notebooks" / "solutions").exists()
