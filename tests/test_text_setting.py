"""The text setting (the plot, or the title joined to the plot; utils.data.text_setting) through the corpus,
the benchmark (`--text`), the model cards (`"text"` in predictor.json) and `utils.predict --title --overview`."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from utils import config


def test_corpus_with_text_joins_titles_and_cleans_again(nltk_data):
    from utils.data.corpus import Corpus
    from utils.data.text import clean_text

    df = pd.DataFrame({"id": ["a", "b"], "title": ["Scary Movie", ""], "text": ["Teens run.", "A quiet walk."],
                       "genres": [["Comedy"], ["Drama"]], "split": ["train", "test"],
                       "clean_text": ["teens run", "quiet walk"], "light_text": ["teens run", "a quiet walk"]})
    corpus = Corpus("tmdb", ["Comedy", "Drama"], df)
    both = corpus.with_text("title+plot")
    assert both.text == "title+plot" and corpus.text == "plot"
    assert both.texts() == ["Scary Movie. Teens run.", "A quiet walk."]        # no title: the plot alone
    assert both.texts(kind="clean") == [clean_text("Scary Movie. Teens run."), "quiet walk"]
    assert both.texts(kind="light")[0] == "scary movie teens run"
    assert both.subset(1, 1).text == "title+plot"
    back = both.with_text("plot")
    assert back.texts() == ["Teens run.", "A quiet walk."] and back.texts(kind="clean")[0] == "teens run"
    with pytest.raises(ValueError, match="plot, title\\+plot"):
        corpus.with_text("title")


def test_load_corpus_refuses_an_unknown_setting_first(course_dirs):
    from utils.data.corpus import load_corpus

    with pytest.raises(ValueError, match="Unknown text setting 'overview'"):
        load_corpus("netflix", text="overview")


def _tiny_tfidf(text_setting, folder, card=None):
    """A TF-IDF model on toy films whose genre word is in the TITLE only, trained on ``text_setting``
    and saved with ``card`` (default: the same)."""
    from utils.data.text import clean_text
    from utils.data.text_setting import compose
    from utils.lessons.tfidf import fit
    from utils.modelfiles import tfidf

    films = [("Alien Space", "A crew wakes up.", [1, 0]), ("Love Kiss", "A crew wakes up.", [0, 1]),
             ("Alien Planet", "Two people meet.", [1, 0]), ("Wedding Kiss", "Two people meet.", [0, 1])] * 6
    texts = [clean_text(compose(plot, title, text_setting)) for title, plot, _ in films]
    pipe = fit(texts, np.array([y for *_, y in films]), min_df=1, max_df=1.0, ngram_range=(1, 1))
    tfidf.save_model(pipe, folder, ["SciFi", "Romance"],
                     {"global": 0.5, "per_genre": {"SciFi": 0.5, "Romance": 0.5}, "default": "global"}, "toy",
                     text=card or text_setting)
    return folder


def test_cards_record_the_setting_and_predict_composes_the_input(tmp_path, nltk_data, capsys):
    from utils.modelfiles.predictor import load_predictor
    from utils.tools.predict import main, predict

    both = _tiny_tfidf("title+plot", tmp_path / "both")
    plot = _tiny_tfidf("plot", tmp_path / "plot")
    assert json.loads((both / "predictor.json").read_text())["text"] == "title+plot"
    assert json.loads((plot / "predictor.json").read_text())["text"] == "plot"
    assert load_predictor(both).text_setting == "title+plot"

    alien = predict("A crew wakes up.", model=both, title="Alien Space")
    love = predict("A crew wakes up.", model=both, title="Love Kiss")
    assert alien.probabilities["SciFi"] > 0.5 > love.probabilities["SciFi"]      # the title decides
    assert alien.note is None and alien.text_setting == "title+plot"
    ignored = predict("A crew wakes up.", model=plot, title="Alien Space")
    assert ignored.probabilities == predict("A crew wakes up.", model=plot).probabilities
    assert ignored.note == "This model was trained on plots alone: the title is ignored."

    assert main(["--model", str(both), "--title", "Alien Planet", "--overview", "Two people meet.", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["genres"][0]["genre"] == "SciFi" and result["text"] == "title+plot" and result["note"] is None
    assert main(["--model", str(plot), "--title", "Alien Planet", "--plot", "Two people meet."]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "note: This model was trained on plots alone: the title is ignored."
    assert main(["--model", str(plot), "--overview", "Two people meet.", "A second plot."]) == 2
    assert "Give the plot once" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["title", 3, ["plot"]])
def test_a_card_with_an_unknown_setting_is_refused_at_load(tmp_path, nltk_data, value, capsys):
    from utils.modelfiles.predictor import ModelFormatError, load_predictor
    from utils.tools.predict import main

    folder = _tiny_tfidf("plot", tmp_path / "model")
    manifest = json.loads((folder / "predictor.json").read_text())
    (folder / "predictor.json").write_text(json.dumps({**manifest, "text": value}))
    with pytest.raises(ModelFormatError, match="field 'text' must be one of plot, title\\+plot"):
        load_predictor(folder)
    assert main(["--model", str(folder), "A crew wakes up."]) == 2
    assert "field 'text'" in capsys.readouterr().err


def test_save_model_refuses_an_unknown_setting(tmp_path, nltk_data):
    with pytest.raises(ValueError, match="Unknown text setting"):
        _tiny_tfidf("plot", tmp_path / "model", card="overview")
    assert not (tmp_path / "model" / "predictor.json").exists()


def test_benchmark_trains_on_title_and_plot_of_tmdb(course_dirs, tmp_path, nltk_data, write_tmdb_csv):
    """``utils.benchmark --dataset tmdb --model tfidf_logreg --text title+plot``, prepared from the real format:
    the genre words are in the titles only, so only a model that reads the titles can score well."""
    words = {"Horror": "ghost haunted blood", "Comedy": "joke prank funny", "Western": "sheriff saloon cowboy"}
    rows = []
    for i in range(240):
        genres = [list(words)[i % 3]] + (["Comedy"] if i % 7 == 0 and i % 3 != 1 else [])
        rows.append(write_tmdb_csv.row(1000 + i, genres, f"A story told in town number {i}, one night.",
                                       title=" ".join(words[g] for g in genres).title()))
    write_tmdb_csv(course_dirs.extra / "tmdb" / "movies_metadata.csv", rows, tail=write_tmdb_csv.broken_record())
    out = tmp_path / "records"
    env = {**os.environ, "COURSE_DATA_DIR": str(course_dirs.extra),
           "COURSE_CACHE_DIR": str(course_dirs.cache)}
    run = subprocess.run([sys.executable, "-m", "utils.benchmark", "--dataset", "tmdb", "--model", "tfidf_logreg",
                          "--fast", "--text", "title+plot", "--processed-dir", str(course_dirs.processed),
                          "--out", str(out)], cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "text title+plot" in run.stdout
    (record_path,) = out.glob("tmdb-tfidf-fast-title+plot.json")
    record = json.loads(record_path.read_text())
    assert record["text"] == "title+plot" and record["figures"]["text"] == "title+plot"
    assert record["metrics"]["micro_f1"] > 0.8
    from utils.tools import benchmark

    plot_record = {**record, "text": "plot"}
    with pytest.raises(benchmark.BenchmarkError, match="text settings"):
        benchmark.check_splits([record, plot_record])
