"""Packaging: one source of truth for dependencies (pyproject.toml, mirrored by environment.yml),
every imported package declared, CI in a fresh environment, and one repository URL."""
import ast
import json
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from conftest import repo_files as _files

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _dist(requirement: str) -> str:
    """'scikit-learn>=1.3' -> 'scikit-learn' (PEP 503 normalised)."""
    name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _env_pip_deps() -> list[str]:
    text = (REPO / "environment.yml").read_text()
    pip_block = text.split("- pip:", 1)[1]
    deps = re.findall(r"^\s+-\s+(\S.*)$", pip_block, flags=re.M)
    return [d.strip() for d in deps if not d.startswith("-e")]



def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return "\n".join(ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))


def _imported_modules(source: str) -> set[str]:
    """Top-level names of absolute imports anywhere in ``source`` (functions included)."""
    mods = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def test_environment_matches_pyproject():
    """environment.yml (a local environment, with JupyterLab) = the dependencies + the "lab" extra."""
    project = PYPROJECT["project"]
    assert sorted(_env_pip_deps()) == sorted(project["dependencies"] + project["optional-dependencies"]["lab"])


def test_installing_the_kit_leaves_colabs_jupyter_alone():
    """pip install on Colab must not upgrade Colab's own Jupyter stack: jupyterlab, ipywidgets and
    ipython are the "lab" extra, not requirements; the test extra has what executing the notebooks needs."""
    project = PYPROJECT["project"]
    jupyter = {"jupyterlab", "ipywidgets", "ipython", "notebook", "ipykernel", "jupyter-client", "jupyter-server"}
    assert not {_dist(r) for r in project["dependencies"]} & jupyter
    assert {_dist(r) for r in project["optional-dependencies"]["lab"]} == {"jupyterlab", "ipywidgets", "ipython"}
    assert {"ipywidgets", "ipython", "ipykernel"} <= {_dist(r) for r in project["optional-dependencies"]["test"]}
    py = re.search(r"python=(\d+\.\d+)", (REPO / "environment.yml").read_text()).group(1)
    assert tuple(map(int, py.split("."))) >= (3, 10)


def test_every_imported_package_is_declared():
    """Each third-party module imported by the package, tests, scripts, bench or notebooks comes
    from a distribution listed in pyproject.toml (dependencies; plus the test extra for tests, and the
    lab extra (Jupyter, widgets) for the notebooks and hdml_lite/viz/, whose widgets need it)."""
    project = PYPROJECT["project"]
    runtime = {_dist(r) for r in project["dependencies"]}
    test = runtime | {_dist(r) for r in project["optional-dependencies"]["test"]}
    lab = runtime | {_dist(r) for r in project["optional-dependencies"]["lab"]}
    local = {p.stem for d in ("tests", "bench") for p in (REPO / d).glob("*.py")} | {"hdml_lite"}   # + bench/benchenv
    provided = packages_distributions()
    missing = []
    for path in _files(".py", ".ipynb"):
        rel = path.relative_to(REPO)
        if rel.parts[0] not in ("hdml_lite", "tests", "scripts", "bench", "notebooks"):
            continue
        source = _notebook_code(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8")
        allowed = (test if rel.parts[0] in ("tests", "bench") else
                   lab if rel.parts[0] == "notebooks" or rel.parts[:2] == ("hdml_lite", "viz") else runtime)
        for mod in _imported_modules(source) - local - set(sys.stdlib_module_names):
            dists = {_dist(d) for d in provided.get(mod, [])}
            if not dists & allowed:
                missing.append(f"{rel}: import {mod} (from {sorted(dists) or 'nothing installed'})")
    assert not missing, "declare these in pyproject.toml:\n" + "\n".join(missing)


def test_test_extra_has_what_the_reference_checks_need():
    """pytorch-metric-learning's AccuracyCalculator needs faiss (tests/test_evaluation.py)."""
    test = {_dist(r) for r in PYPROJECT["project"]["optional-dependencies"]["test"]}
    assert {"pytest", "pytorch-metric-learning", "faiss-cpu", "nbclient", "ipykernel"} <= test


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/demo.sh" in readme
    code = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert code[-1] == "bash scripts/test.sh"                       # the README's command, last
    assert any(re.match(r'VENV=\$\(mktemp -d', ln) for ln in code)   # a new temporary folder ...
    assert 'python3 -m venv "$VENV"' in code                         # ... with a brand-new venv
    assert any('PATH="$VENV/bin:$PATH"' in ln and 'PYTHON="$VENV/bin/python"' in ln for ln in code)
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert '-m pip install' in setup and '-e ".${EXTRA:+[$EXTRA]}"' in setup
    test_sh = [ln for ln in (REPO / "scripts" / "test.sh").read_text().splitlines() if ln.strip()]
    assert "bash scripts/setup.sh test" in test_sh
    assert test_sh[-1].startswith('exec "${PYTHON:-python3}" -m pytest')   # pytest's line closes the run
    assert PYPROJECT["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert len(list((REPO / "tests").glob("test_*.py"))) > 10         # pytest never exits 5 (no tests)


def test_package_data_ships_the_lab_weights_and_the_result_tables():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["hdml_lite"]
    assert "weights/*.pt" in data
    from hdml_lite.results_data import PACKAGED
    globs = {str(Path("results_data") / Path(rel).parent / ("*" + Path(rel).suffix)) for rel in PACKAGED}
    assert globs <= set(data), f"package-data must ship {sorted(globs)}"


# ----------------------------------------------------------------------------- one repository URL

GITHUB_URL = re.compile(r"https?://github\.com/[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)?")
THIRD_PARTY = {"https://github.com/brendenlake/omniglot"}  # dataset home pages, not the kit


def test_one_repository_url_everywhere():
    """Every GitHub URL in the README, results/README.md, notebooks and .py files is either the
    [project.urls] Repository value or a listed third-party page."""
    url = PYPROJECT["project"]["urls"]["Repository"]
    assert url == "https://github.com/hdml-lite/hdml_lite"
    paths = [REPO / "README.md", REPO / "results" / "README.md", *_files(".py", ".ipynb")]
    bad, uses = [], 0
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for m in GITHUB_URL.finditer(text):
            found = m.group(0).removesuffix(".git")
            if found == url:
                uses += 1
            elif found not in THIRD_PARTY:
                bad.append(f"{path.relative_to(REPO)}: {m.group(0)}")
        owner_repo = url.removeprefix("https://github.com/")          # Colab badges name it too
        for m in re.finditer(r"colab\.research\.google\.com/github/([A-Za-z0-9_.\-]+/[A-Za-z0-9_.\-]+)", text):
            if m.group(1) != owner_repo:
                bad.append(f"{path.relative_to(REPO)}: {m.group(0)}")
    assert not bad, f"use {url} (pyproject.toml [project.urls]): {bad}"
    assert uses >= 1


def test_readme_installs_from_a_clone():
    readme = (REPO / "README.md").read_text()
    url = PYPROJECT["project"]["urls"]["Repository"]
    assert f"git clone {url}" in readme and "cd hdml_lite" in readme
    assert "not yet" in readme and "PyPI" in readme


def test_setup_checks_every_declared_package():
    """scripts/setup.sh skips pip only when it can import a module of every declared distribution
    (dependencies; plus the test extra for `setup.sh test`)."""
    setup = (REPO / "scripts" / "setup.sh").read_text()
    base = re.search(r'^MODS="([^"]*)"', setup, flags=re.M).group(1).split()
    extras = {k: v.split() for k, v in re.findall(r'\[ "\$EXTRA" = "(\w+)" \] && MODS="\$MODS ([^"]*)"', setup)}
    provided = packages_distributions()

    def dists(mods):   # a module not installed here (an extra this venv lacks, e.g. lab in CI): its own name
        return {_dist(d) for m in mods for d in provided.get(m, [m])}

    project = PYPROJECT["project"]
    assert {_dist(r) for r in project["dependencies"]} <= dists(base)
    assert set(extras) == set(project["optional-dependencies"])
    for name, reqs in project["optional-dependencies"].items():
        assert {_dist(r) for r in reqs} <= dists(extras[name]), name
