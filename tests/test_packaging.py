"""One source of truth for dependencies: environment.yml mirrors pyproject.toml."""
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env_pip_deps() -> list[str]:
    text = (REPO / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1]
    deps = re.findall(r"^\s+-\s+(\S.*)$", pip_block, flags=re.M)
    return [d.strip() for d in deps if not d.startswith("-e")]


def test_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert sorted(_env_pip_deps()) == sorted(project["dependencies"])
    py = re.search(r"python=(\d+\.\d+)", (REPO / "environment.yml").read_text()).group(1)
    assert tuple(map(int, py.split("."))) >= (3, 10)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/demo.sh" in readme
    assert [ln for ln in ci.splitlines() if ln and not ln.startswith(("#", "set ", "cd "))] == ["bash scripts/test.sh"]
