"""python -m utils.rehearse: the synthetic CMU-format corpus, the cost extrapolation, progress while it runs."""
import os
import sys

import nbformat
import numpy as np
import pytest

from utils import config

from utils.data.datasets import read_cmu_plots
from utils.tools import rehearse

from support import run_timed_lines  # noqa: E402  (tests/support.py)


def test_synthetic_corpus_has_the_cmu_format_and_length_profile(course_dirs, shared_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(shared_dir / "data"))
    folder = rehearse.write_corpus(tmp_path / "corpus", scale=0.02, seed=3)
    plots = read_cmu_plots(folder / "MovieSummaries" / "plot_summaries.txt")
    assert len(plots) == round(rehearse.CMU_PLOTS * 0.02) and plots["id"].is_unique
    lengths = plots["text"].str.len()
    assert 900 < lengths.median() < 1300 and 1450 < lengths.mean() < 2150      # CMU: ~1,100 and ~1,780
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    from utils.data.datasets import load_cmu

    df = load_cmu(download=False, verbose=False)     # the real loader reads it, metadata joined
    assert len(df) == len(plots) and df["genres"].map(len).min() > 0
    again = rehearse.write_corpus(tmp_path / "corpus", scale=0.02, seed=3)   # same settings: reused
    assert read_cmu_plots(again / "MovieSummaries" / "plot_summaries.txt")["id"].tolist() == plots["id"].tolist()


def test_extrapolation_scales_slow_cells_only():
    # 10 s in all: 2 s of fast cells and kernel start, one 8 s cell, at a tenth of the corpus
    assert rehearse.extrapolate(10.0, [0.2, 0.3, 8.0], 0.1) == pytest.approx(2.0 + 80.0)
    assert rehearse.extrapolate(5.0, [0.5], 0.5) == pytest.approx(5.0)
    assert np.isclose(rehearse.extrapolate(10.0, [9.0], 1.0), 10.0)


def test_runner_progress_reaches_the_rehearsal_output_while_it_runs(shared_dir, tmp_path):
    """#28, the benchmark's pattern: the notebook runs in a grandchild (the runner's kernel); its cell
    progress must reach the rehearsal's own output as it happens, one plain line per step, never a flood."""
    if not (shared_dir / "data" / "MovieSummaries").is_dir():
        pytest.skip("needs ../shared/data (the real CMU metadata and the Netflix file)")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(4)"),
                                         nbformat.v4.new_code_cell("time.sleep(4); print('done')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebooks / "01_slow.ipynb")
    env = {**os.environ, "COURSE_DATA_DIR": str(shared_dir / "data"), "COURSE_OUTPUT_DIR": str(tmp_path / "out"),
           "COURSE_PROGRESS": "", "COURSE_PROGRESS_INTERVAL": "1", "PYTHONPATH": str(config.ROOT)}
    cmd = [sys.executable, "-m", "utils.rehearse", "--cmu-scale", "--scale", "0.001", "--only", "01",
           "--notebooks", str(notebooks), "--work", str(tmp_path / "work")]
    code, lines, _ = run_timed_lines(cmd, env)        # (seconds since start, line), read as the rehearsal writes
    assert code == 0, "\n".join(line for _, line in lines)
    text = "\n".join(line for _, line in lines)
    cells = [(t, line) for t, line in lines if line.startswith("[progress] 01_slow.ipynb · cell")]
    first = [t for t, line in cells if "cell 1/2" in line]
    second = [t for t, line in cells if "cell 2/2" in line]
    ended = next(t for t, line in lines if line.startswith("01: ok"))
    assert first and second, text
    # the first cell's line came while the notebook still had seconds of work ahead, not all at the end
    assert first[0] <= second[0] - 2 and second[0] <= ended - 1, text
    assert all("elapsed" in line and "\r" not in line for _, line in cells), text     # a log: plain lines
    assert len(cells) < 30, text                                                     # never a flood
    assert (tmp_path / "out" / "results" / "rehearsal" / "cmu-scale0.001.jsonl").exists()
    assert not (config.DATA_DIR / "rehearsal" / "scale0.001").exists()
