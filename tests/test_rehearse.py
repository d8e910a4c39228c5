"""python -m utils.rehearse: the synthetic CMU-format corpus and the cost extrapolation."""
import numpy as np
import pytest

from utils.data.datasets import read_cmu_plots
from utils.tools import rehearse


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
