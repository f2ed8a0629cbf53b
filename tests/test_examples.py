"""examples/: the quickstart notebook runs top to bottom in a fresh Jupyter kernel, offline, and its checks hold.

The kernel is a Python child process, so the read audit (tests/conftest.py) covers it: its Jupyter and
IPython folders point into the test's temporary folder, never the home folder.
"""

import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
PLOTLY = "application/vnd.plotly.v1+json"


def tagged(nb, tag: str):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{len(cells)} cells tagged {tag!r}"
    return cells[0]


def shown(cell) -> dict:
    """The data of what a cell's last line showed (an execute_result; a plotly figure displays itself)."""
    out = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
    assert len(out) == 1, cell.outputs
    return out[0].data


def stdout(cell) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def test_the_stored_notebook_is_valid_and_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), \
        "store the notebook without outputs (Jupyter: Edit > Clear Outputs of All Cells)"
    assert nb.metadata.kernelspec.name == "python3"


def test_quickstart_runs_top_to_bottom_offline(tmp_path, monkeypatch):
    audit = sys.modules["red_read_audit"]  # loaded by tests/conftest.py
    home = tmp_path / "home"
    for name, sub in (("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                      ("JUPYTER_DATA_DIR", "jupyter-data"), ("JUPYTER_RUNTIME_DIR", "jupyter-runtime")):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(home / sub))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's note about frozen modules
    # red_core from this checkout (the notebook is run from a temporary folder); the audit's folder stays first
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*filter(None, [os.environ.get("PYTHONPATH")]), str(ROOT)]))
    work = tmp_path / "work"
    work.mkdir()
    reads_dir = Path(os.environ[audit.ENV_DIR])
    before = set(os.listdir(reads_dir))

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, startup_timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()  # raises CellExecutionError on any error

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert stdout(tagged(nb, "final")) == "ok\n"
    # the heatmap: one coloured span per token, and the telescoping check passed (✓)
    data = shown(tagged(nb, "heatmap"))
    n = int(re.search(r"(\d+) tokens", data["text/plain"]).group(1))
    assert n > 5 and data["text/html"].count('<span class="tok') == n and "✓" in data["text/html"]
    assert "'ok': True" in shown(tagged(nb, "check"))["text/plain"]
    words = shown(tagged(nb, "words"))
    assert "words" in stdout(tagged(nb, "words")) and "✓" in words["text/html"]
    assert words["text/html"].count('<span class="tok') < n
    figure = shown(tagged(nb, "figure"))
    assert PLOTLY in figure and [t["type"] for t in figure[PLOTLY]["data"]] == ["bar", "scatter"]
    table = shown(tagged(nb, "methods"))["text/plain"]
    assert all(m in table for m in ("red", "sparse", "uniform", "abc"))
    # the kernel's reads reached the audit (it exited cleanly) and stayed inside the allowed folders
    kernels = {}
    for name in set(os.listdir(reads_dir)) - before:
        reads = json.loads((reads_dir / name).read_text())
        if any("ipykernel" in label for label in reads.values()):
            kernels.update(reads)
    assert kernels, "the kernel's reads were not recorded"
    assert audit.outside_reads(kernels, audit.allowed_roots(ROOT, [tmp_path])) == []
