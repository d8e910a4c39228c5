"""What each notebook costs to run: one table for the notebooks, the README and the runner.

    python -m utils.costs            # print the table (Markdown)
    python -m utils.costs --write    # copy it into README.md and each notebook's first cell
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

MACHINE = "2-core AMD EPYC CPU, no GPU, shared with other jobs (times are upper bounds)"
MEASURED = "2026-12-01"
T4_BASIS = ("estimate, not measured: steps that run on the CPU in any case (data preparation, TF-IDF, word2vec, "
            "thresholds) as measured; network training and inference at 10x (BiLSTM, cuDNN) or 15x (BERT/MiniLM) "
            "the 2-core CPU speed, with the GPU settings the notebook then uses (all training plots, more epochs)")

# minutes per notebook: fast = FAST mode (Netflix subset), cmu = full mode on CMU's size; "t4_*" are estimates
COSTS: dict[str, dict[str, float | None]] = {
    "01": {"fast": 0.06, "cmu": 0.6, "t4_fast": 0.06, "t4_cmu": 0.6, "cmu_peak_gb": 1.5},
    "02": {"fast": 0.06, "cmu": 3.1, "t4_fast": 0.06, "t4_cmu": 3.1, "cmu_peak_gb": 2.4},
    "03": {"fast": 0.1, "cmu": 4.8, "t4_fast": 0.1, "t4_cmu": 4.8, "cmu_peak_gb": 1.9},
    "04a": {"fast": 0.12, "cmu": 7.6, "t4_fast": 0.12, "t4_cmu": 7.6, "cmu_peak_gb": 2.0},
    "04b": {"fast": 0.75, "cmu": 15.3, "t4_fast": 0.75, "t4_cmu": 7, "cmu_peak_gb": 2.8},
    "05a": {"fast": 0.49, "cmu": 25, "t4_fast": 0.49, "t4_cmu": 12, "cmu_peak_gb": 2.0},
    "05b": {"fast": 0.67, "cmu": 45, "t4_fast": 0.67, "t4_cmu": 10, "cmu_peak_gb": 3.7},
    "06": {"fast": 0.1, "cmu": 0.4, "t4_fast": 0.1, "t4_cmu": 0.4, "cmu_peak_gb": 0.9},
    "07": {"fast": 0.51, "cmu": 8.2, "t4_fast": 0.51, "t4_cmu": 4, "cmu_peak_gb": 2.8},
    "08": {"fast": 0.72, "cmu": None, "t4_fast": 0.72, "t4_cmu": None, "cmu_peak_gb": None},
    "09": {"fast": 0.3, "cmu": None, "t4_fast": 0.3, "t4_cmu": None, "cmu_peak_gb": None},
}
# CPU figures that are estimates, not a full-size run: 05a/05b from a rehearsal at a tenth of CMU's size
# plus measured per-plot rates (fine-tuning is fixed-size on a CPU, so it does not scale with the corpus)
ESTIMATED = {("05a", "cmu"), ("05b", "cmu")}
# the whole FAST course from a fresh clone (empty data/processed, no caches): `time python -m utils.run_course
# --fast --dataset netflix`, 2026-12-01, load average about 1; the per-notebook "fast" figures are its lines
FAST_COURSE_MINUTES = 3.9
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


def cmu_cpu_minutes() -> dict[str, float]:
    """Full mode on CMU on the 2-core CPU, per notebook prefix (what ``run_course`` budgets with)."""
    return {p: c["cmu"] for p, c in COSTS.items() if c.get("cmu") is not None}


def readme_table() -> str:
    """Every notebook in one Markdown table, with the machine and the T4 basis under it."""
    lines = ["| notebook | " + " | ".join(title for _, title in COLUMNS) + " | peak memory, CMU |",
             "|---|" + "---|" * (len(COLUMNS) + 1)]
    for prefix, c in COSTS.items():
        peak = f"{c['cmu_peak_gb']:.1f} GB" if c.get("cmu_peak_gb") else "–"
        lines.append(f"| {prefix} | " + " | ".join(minutes(c.get(k), (prefix, k) in ESTIMATED) for k, _ in COLUMNS) + f" | {peak} |")
    lines += ["", f"Measured {MEASURED} on a {MACHINE}; full CMU size by `python -m utils.rehearse --cmu-scale` "
              f"(05a and 05b: estimates from a rehearsal at a tenth of the size and measured per-plot rates; 08 "
              f"and 09 not yet rehearsed at CMU size). The whole course in FAST mode, from a fresh clone: "
              f"{FAST_COURSE_MINUTES:.1f} min (`time python -m utils.run_course --fast --dataset netflix`). "
              f"*T4: {T4_BASIS}."]
    return "\n".join(lines)


def notebook_table(prefix: str) -> str:
    """The small table at the top of notebook ``prefix``."""
    c = COSTS[prefix]
    return "\n".join([
        "**What a run costs** (wall time of the whole notebook):",
        "",
        "| | FAST (a subset of the chosen dataset; measured on Netflix) | full size, CMU |",
        "|---|---|---|",
        f"| CPU, 2 cores | {minutes(c.get('fast'))} | {minutes(c.get('cmu'), (prefix, 'cmu') in ESTIMATED)} |",
        f"| Colab T4 GPU (estimate) | {minutes(c.get('t4_fast'))} | {minutes(c.get('t4_cmu'))} |",
        "",
        f"Measured {MEASURED} with `python -m utils.run_course` and `python -m utils.rehearse --cmu-scale` "
        f"on a {MACHINE}; the T4 row is an estimate (see the README's cost table).",
    ])


def _block(text: str) -> str:
    return f"{BEGIN}\n{text}\n{END}"


def _replace_block(text: str, table: str, where: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"{where} has no {BEGIN} ... {END} block for the cost table.")
    head, rest = text.split(BEGIN, 1)
    return head + _block(table) + rest.split(END, 1)[1]


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
        new = _replace_block(text, notebook_table(prefix), path.name)
        if new != text:
            out.append(path.name)
            if write:
                lines = new.split("\n")
                first["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.costs", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update README.md and the notebooks' first cells")
    group.add_argument("--check", action="store_true", help="exit 1 if a file shows other figures")
    args = parser.parse_args(argv)
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
