"""data/paths.py: the one data-location rule, and every place that uses it."""
from pathlib import Path

from hdml_lite.cli import build_parser
from hdml_lite.config import DataConfig
from hdml_lite.data import data_root as exported_data_root
from hdml_lite.data import glyphs
from hdml_lite.data.paths import DATA_ROOT_RULE, data_root


def test_hdml_data_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("HDML_DATA", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "mine"


def test_xdg_cache_home_when_hdml_data_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("HDML_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "hdml_lite"


def test_home_cache_when_both_unset_or_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HDML_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data_root() == tmp_path / "home" / ".cache" / "hdml_lite"
    monkeypatch.setenv("HDML_DATA", "")                  # empty counts as unset
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert data_root() == tmp_path / "home" / ".cache" / "hdml_lite"


def test_explicit_root_overrides_and_tilde_expands(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HDML_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "given") == tmp_path / "given"
    assert data_root("~/given") == tmp_path / "given"
    monkeypatch.setenv("HDML_DATA", "~/env")
    assert data_root() == tmp_path / "env"


def test_every_user_of_the_rule_delegates(tmp_path, monkeypatch):
    """The package export, the glyph cache and the download default all follow the rule."""
    monkeypatch.setenv("HDML_DATA", str(tmp_path / "a"))
    assert exported_data_root is data_root
    assert glyphs.default_root() == tmp_path / "a"
    monkeypatch.delenv("HDML_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert glyphs.default_root() == tmp_path / "x" / "hdml_lite"


def test_download_uses_the_rule(tmp_path, monkeypatch):
    """`download NAME` without --root downloads into data_root()/NAME."""
    import hdml_lite.data.download as dl

    seen = {}

    def fake_download(name, root, **kw):
        seen["root"] = Path(root)
        return Path(root) / name

    monkeypatch.setattr(dl, "download_dataset", fake_download)
    monkeypatch.delenv("HDML_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    args = build_parser().parse_args(["download", "cub"])
    assert args.func(args) == 0
    assert seen["root"] == tmp_path / "x" / "hdml_lite"


def test_the_rule_is_stated_where_users_read_it():
    """`download --help`, the config comment and data/README.md state the same rule."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    help_text = " ".join(sub.choices["download"].format_help().split())
    for part in ("$HDML_DATA if set", "$XDG_CACHE_HOME/hdml_lite", "~/.cache/hdml_lite"):
        assert part in help_text
        assert part in DATA_ROOT_RULE
    config_src = " ".join(Path(__import__("hdml_lite.config").config.__file__).read_text().split())
    assert '"" -> $HDML_DATA if set, else # $XDG_CACHE_HOME/hdml_lite (default ~/.cache/hdml_lite)' in config_src
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text()
    assert "$XDG_CACHE_HOME/hdml_lite" in readme and "~/.cache/hdml_lite" in readme
    assert DataConfig().root == ""
