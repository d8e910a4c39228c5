"""What each notebook costs to run: one table for the notebooks, the README and the runner.

    python -m utils.costs            # print the table (Markdown)
    python -m utils.costs --write    # copy it into README.md, and each notebook's line into its first cell
    python -m utils.costs --check    # exit 1 when README.md or a notebook shows other figures

The figures are wall-clock minutes of a whole notebook, run headless by
``python -m utils.run_course --fast`` (FAST mode, Netflix) and by the dress rehearsal
``python -m utils.rehearse --cmu-scale`` (full mode on 42,306 synthetic plots of CMU's size), on
the machine in :data:`MACHINE`. The Colab T4 column is an **estimate** (no GPU was available
where these were measured); :data:`T4_BASIS` says how it was made. Update :data:`COSTS` after a
new measurement, then run ``--write``: the notebooks and the README never disagree with it
(``tests/test_costs.py``), and ``run_course`` uses the CMU column to refuse runs that would take hours.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from utils import config

MACHINE = "2-core AMD EPYC CPU (AVX2 + FMA; no AVX-512, no AMX), no GPU"
MEASURED = "2026-12-03"
# what the figures depend on (#28), as `python -m utils.costs --machine` prints it for your machine
PROVENANCE = {
    "cpu": "AMD EPYC (the model name /proc/cpuinfo gives; no generation named)",
    "cores": 2,
    "isa": "AVX2, FMA; no AVX-512, no AVX-VNNI, no AMX (/proc/cpuinfo flags)",
    "load": ("FAST course on a quiet machine: 1-minute load average 1.2 before it, 1.7 to 2.1 during it (its "
             "own threads; no other job); full size: 2 to 6 during the rehearsals of 2026-12-01"),
    "date": MEASURED,
}
# Another machine of the same name (issue #28: a quiet 2-core AMD EPYC with AVX2, no AVX-512) ran the FAST
# course in 7.3 min (an older commit) and one full MiniLM fine-tuning epoch in 376 s against ~95 s on the
# machine of the 2026-12-01 rehearsals: "AMD EPYC" names several generations. The table shows the slower FAST
# figure per notebook and the range for the course; MiniLM-bound full-size figures (05a, 05b, 08) may be up to
# 4x higher on another machine: measure yours (--probe).
SLOWER_MACHINE = "a quiet 2-core AMD EPYC, AVX2, no AVX-512 (issue #28)"
FAST_SLOWER = {"04b": 1.5, "05b": 1.43, "07": 0.97, "08": 1.23}
FAST_COURSE_SLOWER_MINUTES = 7.3
T4_BASIS = ("estimate, not measured: steps that run on the CPU in any case (data preparation, TF-IDF, word2vec, "
            "thresholds) as measured; network training and inference at 10x (BiLSTM, cuDNN) or 15x (BERT/MiniLM) "
            "the 2-core CPU speed, with the GPU settings the notebook then uses (all training plots, more epochs)")

# minutes per notebook: fast = FAST mode (Netflix subset), cmu = full mode on CMU's size; "t4_*" are estimates
COSTS: dict[str, dict[str, float | None]] = {
    "01": {"fast": 0.18, "cmu": 0.6, "t4_fast": 0.18, "t4_cmu": 0.6, "cmu_peak_gb": 1.5},
    "02": {"fast": 0.16, "cmu": 3.1, "t4_fast": 0.16, "t4_cmu": 3.1, "cmu_peak_gb": 2.4},
    "03": {"fast": 0.25, "cmu": 4.8, "t4_fast": 0.25, "t4_cmu": 4.8, "cmu_peak_gb": 1.9},
    "04a": {"fast": 0.26, "cmu": 7.6, "t4_fast": 0.26, "t4_cmu": 7.6, "cmu_peak_gb": 2.0},
    "04b": {"fast": 2.22, "cmu": 15.3, "t4_fast": 2.22, "t4_cmu": 7, "cmu_peak_gb": 2.8},
    "05a": {"fast": 1.29, "cmu": 25, "t4_fast": 1.29, "t4_cmu": 12, "cmu_peak_gb": 2.0},
    "05b": {"fast": 2.4, "cmu": 45, "t4_fast": 2.4, "t4_cmu": 10, "cmu_peak_gb": 3.7},
    "06": {"fast": 0.41, "cmu": 0.4, "t4_fast": 0.41, "t4_cmu": 0.4, "cmu_peak_gb": 0.9},
    "07": {"fast": 1.77, "cmu": 8.2, "t4_fast": 1.77, "t4_cmu": 4, "cmu_peak_gb": 2.8},
    "08": {"fast": 3.95, "cmu": None, "t4_fast": 3.95, "t4_cmu": None, "cmu_peak_gb": None},
    "09": {"fast": 0.79, "cmu": None, "t4_fast": 0.79, "t4_cmu": None, "cmu_peak_gb": None},
    "10": {"fast": 2.45, "cmu": None, "t4_fast": 2.45, "t4_cmu": None, "cmu_peak_gb": None},
}
# CPU figures that are estimates, not a full-size run: 05a/05b from a rehearsal at a tenth of CMU's size
# plus measured per-plot rates (fine-tuning is fixed-size on a CPU, so it does not scale with the corpus)
ESTIMATED = {("05a", "cmu"), ("05b", "cmu")}
# notebooks added after the whole FAST course was last timed (FAST_COURSE_MINUTES covers 01-09 only)
NOT_IN_COURSE_RUN = ("10",)
# 10's FAST figure: `python -m utils.run_course --fast --dataset netflix --only 10`, 2026-12-03 19:12-19:15 UTC,
# commit b8eb901, quiet machine (load average 1.0 before, 1.5 after): 2 min 27 s wall, with Netflix's processed data
# built and its FAST plots embedded in the run and TMDB's embeddings cached (cold TMDB embeddings: not measured)
# the whole FAST course from a fresh clone (empty data/processed, no caches): `time python -m utils.run_course
# --fast --dataset netflix`, 2026-12-03 11:23-11:37 UTC, commit 748dba9 (notebooks 01-09), a quiet machine (load
# average 1.2 before; 1.7-2.1 during, the run's own threads); the per-notebook "fast" figures are its lines
# (10 measured by itself, under load: NOT_IN_COURSE_RUN). Over #15's 8-minute goal: the tables say so (goal_note).
FAST_COURSE_MINUTES = 13.8
FAST_COURSE_GOAL_MINUTES = 8

COLUMNS = (("fast", "FAST, CPU"), ("t4_fast", "FAST, T4*"), ("cmu", "full CMU, CPU"), ("t4_cmu", "full CMU, T4*"))
BEGIN, END = "<!-- cost:begin -->", "<!-- cost:end -->"


def minutes(value: float | None, estimate: bool = False) -> str:
    """``"< 1 min"``, ``"12 min"``, ``"1.5 h"``, ``"≈ 25 min (est.)"``; ``"not measured"`` when unknown."""
    if value is None:
        return "not measured"
    if estimate:
        return f"≈ {minutes(value)} (est.)"
    if value < 1:
        return "< 1 min"
    if value < 90:
        return f"{value:.0f} min"
    return f"{value / 60:.1f} h"


def fast_minutes(prefix: str) -> float | None:
    """The FAST figure the tables show: the slower of this machine's and the other machine's (#28)."""
    value = COSTS[prefix].get("fast")
    return None if value is None else max(value, FAST_SLOWER.get(prefix, value))


def provenance() -> str:
    p = PROVENANCE
    return f"CPU {p['cpu']}, {p['cores']} cores, {p['isa']}; {p['load']}; measured {p['date']}"


def cmu_cpu_minutes() -> dict[str, float]:
    """Full mode on CMU on the 2-core CPU, per notebook prefix (what ``run_course`` budgets with)."""
    return {p: c["cmu"] for p, c in COSTS.items() if c.get("cmu") is not None}


def fast_course_range() -> str:
    """The whole FAST course on the two machines measured, lowest first: ``"7.3 to 13.8 min"``."""
    low, high = sorted((FAST_COURSE_MINUTES, FAST_COURSE_SLOWER_MINUTES))
    return f"{low:.1f} to {high:.1f} min"


def goal_note() -> str:
    """What the tables say about #15's goal for the whole FAST course (empty when it is met)."""
    if max(FAST_COURSE_MINUTES, FAST_COURSE_SLOWER_MINUTES) <= FAST_COURSE_GOAL_MINUTES:
        return ""
    return f"; **over the {FAST_COURSE_GOAL_MINUTES}-minute goal** for the whole FAST course"


def readme_table() -> str:
    """Every notebook in one Markdown table, with the machine and the T4 basis under it."""
    lines = ["| notebook | " + " | ".join(title for _, title in COLUMNS) + " | peak memory, CMU |",
             "|---|" + "---|" * (len(COLUMNS) + 1)]
    for prefix, c in COSTS.items():
        peak = f"{c['cmu_peak_gb']:.1f} GB" if c.get("cmu_peak_gb") else "–"
        shown = {k: fast_minutes(prefix) if k == "fast" else c.get(k) for k, _ in COLUMNS}
        lines.append(f"| {prefix} | " + " | ".join(minutes(shown[k], (prefix, k) in ESTIMATED) for k, _ in COLUMNS) + f" | {peak} |")
    lines += ["", f"Measured on a {MACHINE}: {provenance()}. Full CMU size by `python -m utils.rehearse --cmu-scale` "
              f"(05a and 05b: estimates from a rehearsal at a tenth of the size and measured per-plot rates; 08, "
              f"09 and 10 not yet rehearsed at CMU size). The whole course in FAST mode, from a fresh clone: "
              f"{fast_course_range()} for 01-09 (`time python -m utils.run_course --fast --dataset netflix`; "
              f"{', '.join(NOT_IN_COURSE_RUN)} came later and is not in that run; "
              f"{FAST_COURSE_MINUTES:.1f} min here on {MEASURED}, {FAST_COURSE_SLOWER_MINUTES:.1f} min on "
              f"{SLOWER_MACHINE} with an older commit; the table shows the slower FAST figure per notebook){goal_note()}. "
              f"Machines of the same name differ by up to 4x (one MiniLM fine-tuning epoch: 95 s on one, 376 s on "
              f"another), so the full-size "
              f"MiniLM figures (05a, 05b) may be several times higher on yours: `python -m utils.costs --probe` "
              f"measures your machine in about a minute and scales this table to it (an estimate). "
              f"*T4: {T4_BASIS}."]
    return "\n".join(lines)


def notebook_line(prefix: str) -> str:
    """The one line at the top of notebook ``prefix``: its FAST and full-size minutes, CPU and T4.

    One line, so that a notebook's opening stays short; the README holds the table, the machine's
    description and the T4 basis.
    """
    c = COSTS[prefix]
    cpu = (f"FAST {minutes(fast_minutes(prefix), (prefix, 'fast') in ESTIMATED)}, full size (CMU) "
           f"{minutes(c.get('cmu'), (prefix, 'cmu') in ESTIMATED)} on a 2-core CPU")
    t4 = f"FAST {minutes(c.get('t4_fast'))}, full size {minutes(c.get('t4_cmu'))} on a Colab T4 (estimates)"
    return (f"**What a run costs** (the whole notebook): {cpu}; {t4}. Measured {MEASURED} (FAST: a quiet "
            f"2-core AMD EPYC, AVX2; full size: load average 2 to 6); more in [the README's table](../README.md#what-it-costs).")


def _block(text: str, inline: bool = False) -> str:
    return f"{BEGIN}{text}{END}" if inline else f"{BEGIN}\n{text}\n{END}"


def _replace_block(text: str, table: str, where: str, inline: bool = False) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"{where} has no {BEGIN} ... {END} block for the cost table.")
    head, rest = text.split(BEGIN, 1)
    return head + _block(table, inline) + rest.split(END, 1)[1]


def _notebooks() -> dict[str, Path]:
    from utils.tools.colab import notebook_files

    return {p.name.split("_")[0]: p for p in notebook_files(config.NOTEBOOKS_DIR)}


def stale(write: bool = False) -> list[str]:
    """Files whose cost table differs from :data:`COSTS` (rewritten when ``write``)."""
    out = []
    readme = config.ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = _replace_block(text, readme_table(), "README.md")
    if new != text:
        out.append("README.md")
        if write:
            readme.write_text(new, encoding="utf-8")
    for prefix, path in _notebooks().items():
        if prefix not in COSTS:
            out.append(f"{path.name} (no figures in COSTS)")
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        first = nb["cells"][0]
        text = "".join(first["source"])
        new = _replace_block(text, notebook_line(prefix), path.name, inline=True)
        if new != text:
            out.append(path.name)
            if write:
                lines = new.split("\n")
                first["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------- this machine: flags and a probe



def probe_file() -> Path:
    """Where ``--probe`` saves this machine's timings (results/costs/probe.json)."""
    return config.RESULTS_DIR / "costs" / "probe.json"

# which probe workload each notebook's time follows (the step that dominates it on a CPU)
NOTEBOOK_KIND = {"01": "tfidf", "02": "tfidf", "03": "tfidf", "04a": "bilstm", "04b": "bilstm", "05a": "minilm",
                 "05b": "minilm", "06": "tfidf", "07": "minilm", "08": "minilm", "09": "minilm",
                 "10": "minilm"}
# the probe's seconds on the table's machine, measured quiet on 2026-12-03 just before and just after the FAST
# course of the table (`python -m utils.costs --probe`, 11:21 at load 0.1 to 1.1 and 11:37 at load 1.8 to 2.0:
# tfidf 1.3 / 1.1 s, bilstm 0.9 / 1.3 s, minilm 10.6 / 7.5 s). Since the probe keeps the fastest of its repeats
# (REPEATS), the reference is the faster of those two runs, each a single run. The two runs differ by up to 40 %
# on the same quiet machine, so a scaled figure is an estimate to about that. The full-size (CMU) column was
# measured on 2026-12-01 on a machine of the same name. Re-measure on that machine, quiet:
# `python -m utils.costs --probe --save-reference` (a 2-core Intel Xeon, 2026-12-04 at load 0.3 to 0.7, measured
# 0.43 / 0.42 / 2.65 s: about three times the EPYC's speed, so it is not the table's machine).
REFERENCE = {"tfidf": 1.1, "bilstm": 0.9, "minilm": 7.5}
REFERENCE_LOAD = 2.0     # the 1-minute load after the later run (tfidf and minilm come from it)
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags() -> dict:
    """Model name, usable cores and the vector extensions TensorFlow's oneDNN can use (from /proc/cpuinfo)."""
    import os
    import platform

    info = {"cpu": platform.processor() or platform.machine(), "flags": []}
    try:
        info["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cores"] = os.cpu_count() or 1
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and info["cpu"] in ("", platform.machine()):
            info["cpu"] = value.strip()
        if key.strip() == "flags":
            have = set(value.split())
            info["flags"] = [f for f in ISA_FLAGS if f in have]
            break
    return info


def onednn_isa(timeout: float = 120) -> str | None:
    """What oneDNN reports it dispatches to (``ONEDNN_VERBOSE=1`` on one TensorFlow matmul), or ``None``."""
    import os
    import re
    import subprocess

    code = "import tensorflow as tf; tf.linalg.matmul(tf.ones((64, 64)), tf.ones((64, 64))).numpy()"
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "0"}
    try:
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"onednn_verbose,[^\n]*isa:([^\n]+)", run.stdout + run.stderr)
    return match.group(1).strip() if match else None


def load_average() -> list[float] | None:
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# Each workload is timed REPEATS times and the fastest counts (as timeit advises): other processes can only
# make a run slower, so the minimum is the least disturbed estimate of this machine's speed. On CI, where the
# probe runs beside the Colab stage's installs, one run each had predicted the FAST course at +87 % and +38 % of
# its measured time (the CI runs of 22217a2 and 6cd1ad6). This removes short disturbances only: a job that holds
# a core for the whole probe slows every repeat (a local .ci/run of 924f880, probe beside stage 2's notebooks at
# load 3: 2-3x its quiet seconds while the notebooks slowed 15 %, so +55 %; the run before it, beside downloads, -11 %).
REPEATS = 3


def _fastest(step, repeats: int = REPEATS) -> float:
    """The fewest seconds ``step()`` took in ``repeats`` runs."""
    import time

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def _probe_tfidf() -> float:
    """Seconds of one TF-IDF (1-2 grams) + one-vs-rest logistic regression fit on 2,000 synthetic plots."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    docs = [" ".join(rng.choice(words, 120)) for _ in range(2000)]
    y = (rng.random((2000, 10)) < 0.2).astype(int)

    def fit():
        x = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(docs)
        OneVsRestClassifier(LogisticRegression(max_iter=200)).fit(x, y)

    return _fastest(fit)


def _probe_bilstm() -> float:
    """Seconds of one BiLSTM epoch (320 sequences of 150 tokens, batch 32), after a warm-up that traces it."""
    import numpy as np

    from utils.tools.quiet_tf import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 5000, (320, 150)), (rng.random((320, 10)) < 0.2).astype("float32")
    model = keras.Sequential([keras.Input((150,), dtype="int32"), keras.layers.Embedding(5000, 100),
                              keras.layers.Bidirectional(keras.layers.LSTM(64)),
                              keras.layers.Dense(10, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    model.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0)      # traces the step: not timed
    return _fastest(lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0))


def _probe_minilm() -> float:
    """Seconds of 3 MiniLM fine-tuning steps (batch 16, 128 tokens) on the offline checkpoint, after a warm-up:
    three times the fastest of 5 steps."""
    import numpy as np

    from utils.lessons.heads import build_head
    from utils.lessons.minilm import build_classifier
    from utils.modelfiles.minilm import load_encoder

    import keras

    encoder = load_encoder()
    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(2000)]
    texts = [" ".join(rng.choice(words, 150)) for _ in range(16)]
    y = (rng.random((16, 10)) < 0.2).astype("float32")
    encoder.backbone.get_layer("pooled_dense").trainable = False     # as notebook 05b's finetune: unused
    model = build_classifier(encoder.backbone, build_head(keras, encoder.dim, 10, 64, 0.1))
    model.compile(optimizer=keras.optimizers.AdamW(2e-5), loss="binary_crossentropy", jit_compile=False)
    x = encoder.pack([row[:128] for row in encoder.token_ids(texts)], 128)
    model.train_on_batch(x, y)                                          # traces the step: not timed
    return 3 * _fastest(lambda: model.train_on_batch(x, y), repeats=5)


PROBES = {"tfidf": _probe_tfidf, "bilstm": _probe_bilstm, "minilm": _probe_minilm}


def probe(log=print) -> dict:
    """Time the fixed workloads (a TF-IDF fit, a BiLSTM epoch on a slice, 3 MiniLM fine-tuning steps), each
    the fastest of several runs."""
    import time

    before = load_average()
    seconds = {}
    for kind, fn in PROBES.items():
        log(f"[probe] {kind} ...")
        seconds[kind] = round(fn(), 2)
        log(f"[probe] {kind}: {seconds[kind]:.1f} s (load average {' / '.join(map(str, load_average() or ['?']))})")
    result = {"seconds": seconds, "machine": cpu_flags(), "onednn_isa": onednn_isa(),
              "load_before": before, "load_after": load_average(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    result["factors"] = {k: (round(seconds[k] / REFERENCE[k], 2) if REFERENCE.get(k) else None) for k in seconds}
    return result


def speed_factors() -> dict[str, float]:
    """This machine's slowness per workload against the table's machine (1.0 each without a saved probe)."""
    try:
        saved = json.loads(probe_file().read_text())
        return {k: float(v) for k, v in saved.get("factors", {}).items() if v}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def speed_factor(prefix: str | None = None, factors: dict[str, float] | None = None) -> float:
    """The factor for one notebook (its workload's), or the mean over the notebooks' workloads
    (``factors``: the saved probe's when ``None``)."""
    factors = speed_factors() if factors is None else factors
    if not factors:
        return 1.0
    if prefix is not None:
        return factors.get(NOTEBOOK_KIND.get(prefix, ""), 1.0)
    kinds = [factors.get(k, 1.0) for k in NOTEBOOK_KIND.values()]
    return sum(kinds) / len(kinds)


def speed_label() -> str:
    factors = speed_factors()
    if not factors:
        return f"from the cost table, {PROVENANCE['cpu'].split(' (')[0]} {PROVENANCE['cores']} cores"
    return "scaled to this machine by its probe (an estimate: " + ", ".join(f"{k} x{v:g}" for k, v in factors.items()) + ")"


def scaled_costs() -> dict[str, dict[str, float | None]]:
    """:data:`COSTS` with each CPU figure multiplied by this machine's factor for that notebook's workload."""
    out = {}
    for prefix, c in COSTS.items():
        f = speed_factor(prefix)
        out[prefix] = {"fast": None if c.get("fast") is None else round(c["fast"] * f, 2),
                       "cmu": None if c.get("cmu") is None else round(c["cmu"] * f, 1)}
    return out


def compare_course(measured: dict[str, float], factors: dict[str, float] | None = None) -> dict:
    """The probe's prediction of the FAST course against a measured run, over the notebooks of the course run.

    ``measured``: seconds per notebook prefix (``durations.json`` of ``COURSE_EXECUTED_DIR``, or a runner's
    lines); ``factors``: this machine's probe factors (the saved probe's when ``None``). #28 asks the prediction
    to land within 30 % of the measured time.
    """
    factors = speed_factors() if factors is None else factors
    rows = []
    for prefix, c in COSTS.items():
        if prefix in NOT_IN_COURSE_RUN or c.get("fast") is None or prefix not in measured:
            continue
        rows.append((prefix, c["fast"] * speed_factor(prefix, factors), measured[prefix] / 60))
    missing = [p for p in COSTS if p not in NOT_IN_COURSE_RUN and p not in measured]
    predicted, actual = sum(r[1] for r in rows), sum(r[2] for r in rows)
    error = (predicted - actual) / actual if actual else None
    return {"rows": rows, "missing": missing, "predicted": predicted, "measured": actual, "error": error,
            "within_30": error is not None and abs(error) <= 0.30 and not missing, "scaled": bool(factors)}


def compare_report(result: dict) -> str:
    lines = [f"  {p:>3}: predicted {pred:5.2f} min, measured {meas:5.2f} min" for p, pred, meas in result["rows"]]
    if result["error"] is None:
        return "no notebook of the course run was measured: nothing to compare"
    basis = "scaled by this machine's probe" if result["scaled"] else "the table as is (no probe saved here)"
    lines.append(f"FAST course ({len(result['rows'])} notebooks): predicted {result['predicted']:.1f} min ({basis}), "
                 f"measured {result['measured']:.1f} min: {result['error']:+.0%}; load average now "
                 f"{' / '.join(map(str, load_average() or ['?']))}")
    if result["missing"]:
        lines.append("not measured: " + ", ".join(result["missing"]) + " (a partial run: no verdict)")
    else:
        lines.append("within 30 % (#28): " + ("yes" if result["within_30"] else "no"))
    return "\n".join(lines)


def probe_report(result: dict) -> str:
    m = result["machine"]
    load = result.get("load_after") or ["?"]
    lines = [f"this machine: {m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags']) or 'none found'}; oneDNN: "
             f"{result.get('onednn_isa') or 'not reported'}; load average {' / '.join(map(str, load))} (1/5/15 min)",
             "probe seconds: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items())]
    if not any(result["factors"].values()):
        lines.append("no reference timings for the table's machine yet: nothing to scale by "
                     "(on the table's machine, quiet: python -m utils.costs --probe --save-reference)")
        return "\n".join(lines)
    lines.append("factors against the table's machine: " + ", ".join(f"{k} x{v}" for k, v in result["factors"].items())
                 + (f" (its reference was measured at load {REFERENCE_LOAD}: contended, rough)" if REFERENCE_LOAD and REFERENCE_LOAD > 2 else ""))
    busy = load[0] != "?" and load[0] > (m["cores"] or 1)
    lines.append("ESTIMATE of the cost table on this machine" + (" (this machine is busy: load above its core count, "
                                                                    "so these are upper bounds)" if busy else "") + ":")
    scaled = scaled_costs()
    for prefix, c in scaled.items():
        lines.append(f"  {prefix:>4}  FAST ~{minutes(c['fast'])}   full CMU ~{minutes(c['cmu'])}")
    course = FAST_COURSE_MINUTES * speed_factor()
    lines.append(f"  FAST course ~{course:.1f} min (table: {FAST_COURSE_MINUTES:.1f} min on its machine)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.costs", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update README.md and the notebooks' first cells")
    group.add_argument("--check", action="store_true", help="exit 1 if a file shows other figures")
    group.add_argument("--probe", action="store_true",
                       help="time a small fixed workload here (about a minute) and scale the table to this machine")
    group.add_argument("--machine", action="store_true", help="print this machine's CPU, cores, vector flags, load")
    group.add_argument("--compare", metavar="DURATIONS", type=Path,
                       help="compare the probe's prediction of the FAST course with a measured run (seconds per "
                            "notebook, the durations.json that `COURSE_EXECUTED_DIR=... python -m pytest` writes)")
    parser.add_argument("--save-reference", action="store_true",
                        help="with --probe: print the timings as REFERENCE for the table's machine instead")
    args = parser.parse_args(argv)
    if args.machine:
        m = cpu_flags()
        print(f"{m['cpu']}, {m['cores']} cores, flags {' '.join(m['flags']) or 'none found'}; load average "
              f"{' / '.join(map(str, load_average() or ['?']))}; the table's machine: {provenance()}")
        return 0
    if args.compare:
        try:
            measured = {str(k): float(v) for k, v in json.loads(args.compare.read_text()).items()}
        except (OSError, ValueError, AttributeError, TypeError) as err:
            print(f"cannot read {args.compare}: {err} (expected a JSON object of seconds per notebook prefix)",
                  file=sys.stderr)
            return 2
        print(compare_report(compare_course(measured)))
        return 0
    if args.probe:
        from utils.files import atomic_write_json

        result = probe()
        if args.save_reference:
            print(f"REFERENCE = {result['seconds']!r}\nREFERENCE_LOAD = {(result['load_after'] or [None])[0]!r}")
            return 0
        atomic_write_json(probe_file(), result)
        print(probe_report(result))
        print(f"saved {probe_file()} (the runner's estimates and --budget use it; delete it to use the table as is)")
        return 0
    if args.write or args.check:
        files = stale(write=args.write)
        if args.check and files:
            print("cost tables out of date (run python -m utils.costs --write): " + ", ".join(files))
            return 1
        print(("updated: " + ", ".join(files)) if files else "cost tables up to date")
        return 0
    print(readme_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
