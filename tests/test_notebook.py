"""The Colab sampling notebook runs top to bottom against a tiny trained stack."""

import pytest
from conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_notebook_is_committed_cleared_and_its_code_parses():
  nb = nbformat.read(REPO / "colab" / "sample.ipynb", as_version=4)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(not c.get("outputs") for c in code), "commit the notebook cleared"
  for cell in code:  # Shell and magic lines (`!pip`, `%cd`) are Colab's, not Python's.
    compile(
      "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("!", "%"))), "cell", "exec"
    )


@pytest.mark.slow
def test_sampling_notebook_runs_headless(tiny_stack):
  nb = nbformat.read(REPO / "colab" / "sample.ipynb", as_version=4)
  params = next(c for c in nb.cells if "CHECKPOINTS =" in c.source)
  params.source = params.source.replace('"pretrained/piano"', repr(str(tiny_stack))).replace(
    "SECONDS = 20.0", "SECONDS = 0.05"
  )
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  html = [o["data"].get("text/html", "") for o in outputs if o.output_type == "display_data"]
  images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o["data"]]
  assert sum("<audio" in h for h in html) == 3  # two generated pieces and one continuation
  assert len(images) == 3
  text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "receptive field" in text and "codes/s" in text
