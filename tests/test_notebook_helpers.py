"""hdml_lite.viz.notebook: budget settings read from the environment give one clear line, and the
trainer's progress bar is saved as its final line."""
import os
import shutil
import tempfile

import pytest
import torch

from hdml_lite.viz import notebook


@pytest.mark.parametrize("env, message", [
    ({"HDML_BUDGET": "foo"}, "HDML_BUDGET='foo': expected one of fast, cpu, full"),
    ({"HDML_BUDGET": "foo", "HDML_FAST": "1"}, "HDML_BUDGET='foo'"),
    ({"HDML_BUDGET": "cpu", "HDML_FAST": "1"}, "HDML_FAST=1 and HDML_BUDGET=cpu disagree"),
])
def test_bad_budget_settings_give_one_line(env, message, monkeypatch):
    monkeypatch.delenv("HDML_FAST", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(notebook.BudgetError) as err:
        notebook.pick_budget(torch.device("cpu"))
    lines = err.value._render_traceback_()                 # what IPython prints instead of a traceback
    assert len(lines) == 1 and message in lines[0]


def test_fast_and_budget_agreeing_is_fine(monkeypatch):
    monkeypatch.setenv("HDML_FAST", "1")
    monkeypatch.setenv("HDML_BUDGET", "fast")
    assert notebook.pick_budget(torch.device("cuda")) == "fast"
    monkeypatch.delenv("HDML_FAST")
    monkeypatch.setenv("HDML_BUDGET", "cpu")
    assert notebook.pick_budget(torch.device("cuda")) == "cpu"


def test_in_a_kernel_bars_end_on_their_final_line_and_a_bad_budget_is_one_line(monkeypatch):
    """In a real kernel (where tqdm.auto draws a widget, saved as "0%"), after text_progress_bars()
    with HDML_TEXT_BARS=1 the trainer's bar is a text stream whose last line is the finished bar; and HDML_BUDGET=foo stops
    the set-up cell with a one-line error, no traceback."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.delenv("HDML_FAST", raising=False)
    monkeypatch.setenv("HDML_BUDGET", "foo")
    monkeypatch.setenv("HDML_TEXT_BARS", "1")                 # opt-in: text bars for a headless, saved run
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from hdml_lite.viz.notebook import pick_budget, text_progress_bars\n"
        "from hdml_lite.training import trainer\n"
        "text_progress_bars()\n"
        "for _ in trainer.tqdm(range(40), desc='lab_npair'):\n"
        "    pass"), nbformat.v4.new_code_cell("budget = pick_budget()")])
    sockets = tempfile.mkdtemp(prefix="nbk")
    km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
    try:
        nbclient.NotebookClient(nb, km=km, timeout=120, kernel_name="python3", allow_errors=True).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        shutil.rmtree(sockets, ignore_errors=True)
    outs = nb.cells[0].outputs
    assert outs and all(o["output_type"] == "stream" for o in outs)      # no widget (saved as "0%")
    text = "".join(o["text"] for o in outs)
    final = text.replace("\r\n", "\n").rstrip("\n").split("\r")[-1]     # what a reader sees: the last rewrite
    assert "100%" in final and "40/40" in final
    assert text.count("\r") <= 5                       # redrawn every 2 s at most: a saved copy stays small
    err = nb.cells[1].outputs
    assert len(err) == 1 and err[0]["output_type"] == "error" and err[0]["ename"] == "BudgetError"
    assert err[0]["traceback"] == ["BudgetError: HDML_BUDGET='foo': expected one of fast, cpu, full (or leave it unset)"]
