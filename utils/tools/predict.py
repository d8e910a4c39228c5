"""Predict the genres of a new plot with a model saved by notebooks 03-05.

    python -m utils.predict "A retired hitman is pulled back in for one last job."
    python -m utils.predict --model models/netflix/tfidf_logreg --file plot.txt
    python -m utils.predict --title "Scary Movie" --overview "Teens are stalked by a masked killer."
    echo "Two sisters run a bakery in Seoul." | python -m utils.predict --model bilstm_w2v --all

In Python::

    from utils.tools.predict import predict
    result = predict("A retired hitman ...", model="tfidf_logreg")
    result.genres          # [("Thrillers", 0.71), ...] above their thresholds, most likely first

The model folder's ``predictor.json`` says which module loads it, which
thresholds were tuned on validation (see :mod:`utils.modelfiles.predictor`) and
what the model reads (``"text"``): a ``title+plot`` model gets ``"Title. Plot"``
(:func:`utils.data.text_setting.for_model`); a plot model ignores a title, with a one-line note.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from utils import config
from utils.modelfiles.predictor import MANIFEST, ModelFormatError, Predictor, read_manifest
from utils.data.text import MAX_CHARS, TextError, check_text
from utils.data.text_setting import for_model

DEFAULT_MODEL = "tfidf_logreg"
MAX_TITLE_CHARS = 1_000       # a title, not a second plot
LEGACY_KERAS_KINDS = {"bert_tfhub"}  # TF Hub layers need Keras 2 (tf-keras)


class PredictError(ValueError):
    """A plot the model cannot say anything about (no words, no known words)."""


@dataclass
class Prediction:
    model_dir: Path
    kind: str
    dataset: str
    threshold_choice: str                  # "global", "per_genre" or "fixed"
    probabilities: dict[str, float]        # every genre, most likely first
    thresholds: dict[str, float]           # the threshold of every genre
    known_words: int
    total_words: int
    genres: list[tuple[str, float]] = field(default_factory=list)  # predicted, most likely first
    text_setting: str = "plot"             # what the model reads: "plot" or "title+plot"
    note: str | None = None                # e.g. "... the title is ignored." for a plot model given a title

    def as_dict(self) -> dict:
        return {"model_dir": str(self.model_dir), "kind": self.kind, "dataset": self.dataset,
                "text": self.text_setting, "note": self.note,
                "threshold_choice": self.threshold_choice,
                "genres": [{"genre": g, "probability": p} for g, p in self.genres],
                "probabilities": self.probabilities, "thresholds": self.thresholds,
                "known_words": self.known_words, "total_words": self.total_words}


def saved_models(dataset: str | None = None) -> list[str]:
    """Names of the models saved under ``models/<dataset>/``."""
    folder = config.models_dir(dataset)
    return sorted(p.parent.name for p in folder.glob(f"*/{MANIFEST}")) if folder.is_dir() else []


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def resolve_model_dir(model: str | os.PathLike | None = None, dataset: str | None = None) -> Path:
    """A model name, looked up in ``models/<dataset>/`` first and then in the current folder, or a folder path.

    A plain name is one folder name (letters, digits, ``_``, ``.``, ``-``; not ``..``): it can
    never reach outside ``models/<dataset>/`` or the current folder. Anything with a path
    separator is the user's own path and is used as given.
    """
    model = model or DEFAULT_MODEL
    text = str(model)
    if os.sep in text or "/" in text or (os.altsep and os.altsep in text):
        folder = Path(text).expanduser()
    else:
        if not _SAFE_NAME.fullmatch(text) or set(text) == {"."}:
            raise ModelFormatError(f"{text!r} is not a model name (letters, digits, '_', '.', '-'); "
                                   f"give a folder path such as ./my_model instead.")
        folder = config.models_dir(dataset) / text
        if not folder.is_dir() and (Path.cwd() / text / MANIFEST).is_file():
            folder = Path.cwd() / text
    if not folder.is_dir():
        have = saved_models(dataset)
        hint = (f"saved models for {dataset or config.dataset_name()}: {', '.join(have)}" if have else
                f"no model is saved under {config.models_dir(dataset)} yet: run notebook 03 "
                f"(TF-IDF) or 04-05 first")
        raise ModelFormatError(f"Model folder {folder} does not exist ({hint}).")
    return folder


def _prepare_tensorflow(kind: str) -> None:
    """TF Hub models need Keras 2, which must be chosen before TensorFlow is imported."""
    if kind not in LEGACY_KERAS_KINDS:
        return
    legacy = os.environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in {"1", "true", "yes"}
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    elif not legacy:
        raise ModelFormatError(f"A {kind} model needs Keras 2, but TensorFlow is already imported with "
                               f"Keras 3. Restart Python, set os.environ['TF_USE_LEGACY_KERAS'] = '1' "
                               f"before anything imports TensorFlow, then predict again.")


def load(model=None, dataset: str | None = None) -> tuple[Predictor, dict, Path]:
    """Load a saved model: ``(predictor, manifest, folder)``."""
    from utils.modelfiles.predictor import load_predictor

    folder = resolve_model_dir(model, dataset)
    manifest = read_manifest(folder)   # clear errors for other versions / foreign folders
    _prepare_tensorflow(manifest["kind"])
    return load_predictor(folder), manifest, folder


def _threshold_vector(predictor: Predictor, threshold) -> tuple[str, list[float]]:
    if threshold is None or threshold in ("global", "per_genre"):
        which = threshold or predictor.thresholds.get("default", "global")
        return which, [float(t) for t in predictor.threshold_vector(which)]
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be 'global', 'per_genre' or a number in (0, 1), "
                         f"not {threshold!r}.") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"A fixed threshold must be between 0 and 1 (exclusive), not {value}.")
    return "fixed", [value] * len(predictor.genres)


def predict(text: str, model=None, dataset: str | None = None, threshold=None,
            max_chars: int = MAX_CHARS, predictor: Predictor | None = None, title: str | None = None) -> Prediction:
    """Genres of one plot with their probabilities, cut at the model's saved thresholds.

    ``title``: the film's title; a model trained on title and plot reads ``"Title. Plot"``, a model
    trained on plots ignores it (``Prediction.note`` says so).

    ``model``: a name under ``models/<dataset>/`` or a folder (default ``tfidf_logreg``);
    pass an already loaded ``predictor`` instead to predict many plots quickly.
    ``threshold``: ``None`` (the model's default), ``"global"``, ``"per_genre"`` or a number.
    Raises :class:`utils.data.text.TextError` for an empty or over-long plot,
    :class:`PredictError` when the model knows none of its words, and
    :class:`utils.modelfiles.predictor.ModelFormatError` for a missing or incompatible model folder.
    """
    if isinstance(text, str) and len(text) > max_chars:
        raise TextError(f"The plot is longer than the limit of {max_chars:,} characters: pass a summary, "
                        f"not a whole screenplay (or raise the limit with max_chars= / --max-chars).")
    text = check_text(text, max_chars=max_chars)
    if title is not None and not isinstance(title, str):
        raise TextError(f"A title must be a string, got {type(title).__name__}.")
    if title is not None and len(title) > MAX_TITLE_CHARS:
        raise TextError(f"The title has {len(title):,} characters; the limit is {MAX_TITLE_CHARS:,}.")
    if predictor is None:
        predictor, manifest, folder = load(model, dataset)
    else:
        manifest, folder = {"kind": type(predictor).__name__, "dataset": dataset or "?"}, Path("(in memory)")
    setting = getattr(predictor, "text_setting", "plot")
    text, note = for_model({"text": setting}, text, title)
    known, total = predictor.known_words(text)
    if total == 0:
        raise PredictError("The plot has no usable words: after lowercasing and removing punctuation, "
                           "numbers and stopwords nothing is left. Describe the story in a sentence.")
    if known == 0:
        raise PredictError(f"None of the plot's {total} words is in the model's vocabulary, so any "
                           f"prediction would be a guess. Is the plot in English? The model was "
                           f"trained on the {manifest.get('dataset', '?')} plots.")
    which, cut = _threshold_vector(predictor, threshold)
    prob = [float(p) for p in predictor.predict_proba([text])[0]]
    if not all(0.0 <= p <= 1.0 for p in prob):   # NaN fails both comparisons
        raise ModelFormatError(f"The model in {folder} returned probabilities outside [0, 1] (or NaN): "
                               f"its weights are damaged; train and save it again.")
    order = sorted(range(len(prob)), key=lambda j: -prob[j])
    genres = predictor.genres
    return Prediction(
        model_dir=folder, kind=manifest["kind"], dataset=manifest.get("dataset", "?"),
        threshold_choice=which,
        probabilities={genres[j]: prob[j] for j in order},
        thresholds={g: cut[j] for j, g in enumerate(genres)},
        known_words=int(known), total_words=int(total),
        genres=[(genres[j], prob[j]) for j in order if prob[j] >= cut[j]],
        text_setting=setting, note=note,
    )


# ----------------------------------------------------------------------------- command line
def _read_stream(stream, limit: int, name: str) -> str:
    """Up to ``limit`` characters of a text or binary stream, decoded strictly as UTF-8."""
    raw = getattr(stream, "buffer", stream)     # sys.stdin: read its bytes, whatever the locale says
    try:
        data = raw.read(limit * 4)              # a UTF-8 character is at most 4 bytes
        if isinstance(data, bytes):
            data = data.decode("utf-8")         # (a cut inside the last character only happens past the limit)
        return data[:limit]
    except UnicodeDecodeError as err:
        raise TextError(f"{name} is not UTF-8 text (byte {err.start}: {err.reason}); save the plot as UTF-8.") from None


def _read_plot(args, stdin=None) -> str:
    stdin = stdin or sys.stdin
    limit = args.max_chars + 1  # read one character more than allowed, so over-long input is detected
    given = [name for name, value in (("as text", args.text), ("with --file", args.file),
                                      ("with --overview/--plot", args.overview)) if value]
    if len(given) > 1:
        raise TextError(f"Give the plot once: {' and '.join(given)} were both given.")
    if args.overview:
        return args.overview[:limit]
    if args.file:
        if args.file == "-":
            return _read_stream(stdin, limit, "standard input")
        path = Path(args.file).expanduser()
        if not path.is_file():
            raise TextError(f"--file {args.file}: no such file.")
        with open(path, "rb") as f:
            return _read_stream(f, limit, f"--file {args.file}")
    if args.text:
        return " ".join(args.text)
    if stdin.isatty():
        raise TextError("No plot given: pass it as an argument, with --file PATH, or on stdin.")
    return _read_stream(stdin, limit, "standard input")


def _bar(p: float, width: int = 20) -> str:
    return "#" * round(p * width)


def format_prediction(result: Prediction, show_all: bool = False, top: int = 3) -> str:
    """Human-readable report of a :class:`Prediction`."""
    kind = result.threshold_choice
    if kind == "global":
        cut = f"global threshold {next(iter(result.thresholds.values())):.2f}"
    elif kind == "fixed":
        cut = f"fixed threshold {next(iter(result.thresholds.values())):.2f}"
    else:
        cut = "per-genre thresholds"
    both = result.text_setting == "title+plot"
    lines = [f"Model: {result.model_dir} ({result.kind}, trained on {result.dataset}"
             f"{', reads title and plot' if both else ''}; {cut})",
             f"{'Title and plot' if both else 'Plot'}: {result.total_words} words, {result.known_words} known to the model",
             ""]
    if result.note:
        lines.insert(0, f"note: {result.note}")
    width = max(len(g) for g in result.probabilities)
    if result.genres:
        lines.append("Predicted genres:")
        lines += [f"  {g:<{width}}  {p:.2f}  {_bar(p)}" for g, p in result.genres]
    else:
        lines.append("No genre reaches its threshold. Most likely:")
        lines += [f"  {g:<{width}}  {p:.2f}  {_bar(p)}" for g, p in list(result.probabilities.items())[:top]]
    if show_all:
        lines += ["", "All genres (probability / threshold):"]
        lines += [f"  {g:<{width}}  {p:.2f} / {result.thresholds[g]:.2f}  {_bar(p)}"
                  for g, p in result.probabilities.items()]
    return "\n".join(lines)


def _manifest_kind(model, dataset) -> str | None:
    """The saved model's kind, read before anything imports TensorFlow (None if unreadable)."""
    try:
        return read_manifest(resolve_model_dir(model, dataset))["kind"]
    except (ValueError, OSError):
        return None  # predict() reports the problem properly


def main(argv=None, stdin=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.predict",
                                     description="Predict the genres of a movie plot with a saved model.")
    parser.add_argument("text", nargs="*", help="the plot (or use --overview, --file or stdin)")
    parser.add_argument("--overview", "--plot", dest="overview", default=None,
                        help="the plot (TMDB calls it the overview), instead of the positional text")
    parser.add_argument("--title", default=None,
                        help="the film's title: read by a model trained on title and plot, ignored (with a note) "
                             "by a model trained on plots")
    parser.add_argument("--file", "-f", help="read the plot from this UTF-8 file ('-' for stdin)")
    parser.add_argument("--model", "-m", default=None,
                        help=f"model name under models/<dataset>/ or a model folder (default: {DEFAULT_MODEL})")
    parser.add_argument("--dataset", default=None, help="dataset whose models/ folder to use: cmu, netflix, tmdb or "
                        "csv:PATH (default: COURSE_DATASET)")
    parser.add_argument("--threshold", default=None,
                        help="'global', 'per_genre' or a number (default: what the model saved)")
    parser.add_argument("--all", action="store_true", help="show the probability of every genre")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS,
                        help=f"refuse plots longer than this (default {MAX_CHARS:,} characters)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    kind = _manifest_kind(args.model, args.dataset)
    if kind in LEGACY_KERAS_KINDS:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"   # before TensorFlow is first imported
    if kind not in (None, "tfidf_logreg") and "tensorflow" not in sys.modules:
        from utils.tools.quiet_tf import import_tensorflow

        import_tensorflow()                       # without TensorFlow's C++ start-up noise
    try:
        text = _read_plot(args, stdin)
        result = predict(text, model=args.model, dataset=args.dataset, threshold=args.threshold,
                         max_chars=args.max_chars, title=args.title)
    except (TextError, PredictError, ModelFormatError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2, allow_nan=False) if args.json
          else format_prediction(result, args.all))
    return 0


if __name__ == "__main__":
    sys.exit(main())
