"""The headless course runner on throwaway notebooks: progress, executed copies, first failure."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from utils import config
from utils.tools import run_course


def write_nb(path, *sources):
    nb = new_notebook(cells=[new_markdown_cell(f"# {path.stem}")] + [new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path / "results")   # no results: table says so
    monkeypatch.setattr(config, "PROCESSED_DIR", tmp_path / "processed")   # the run lock goes there, not in data/
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_nb(nbs / "01_pass.ipynb",
             "import os\nprint('fast', os.environ['COURSE_FAST'], os.environ['COURSE_DATASET'])",
             "open('cwd.txt', 'w').write(os.getcwd())")
    write_nb(nbs / "02_fail.ipynb", "x = 1", "raise ValueError('boom in cell three')", "print('never')")
    write_nb(nbs / "03_later.ipynb", "open('ran.txt', 'w').write('yes')")
    return nbs


def test_stops_at_first_failure_and_reports_it(course, tmp_path):
    lines = []
    out = tmp_path / "runs" / "x"
    report = run_course.run(notebooks_dir=course, out_dir=out, fast=True, dataset="netflix",
                            log=lines.append, timeout=120)
    text = "\n".join(lines)
    assert not report.ok
    # progress with elapsed time, one line per notebook
    assert "[1/3] 01_pass.ipynb ok in" in text and " s" in text
    assert "[2/3] 02_fail.ipynb FAILED after" in text
    # the failure: notebook, cell (1-based, counting the markdown title), id and error
    f = report.failure
    assert (f.notebook, f.cell_index) == ("02_fail.ipynb", 2)
    assert "FAILED: 02_fail.ipynb, cell 3" in text
    assert "ValueError: boom in cell three" in text
    assert "raise ValueError('boom in cell three')" in text
    # the run stopped there
    assert report.skipped == ["03_later.ipynb"] and not (course / "ran.txt").exists()
    # executed copies in the output folder, with outputs; the committed notebooks untouched
    executed = nbformat.read(out / "01_pass.ipynb", as_version=4)
    assert "fast 1 netflix" in executed.cells[1].outputs[0]["text"]
    failed = nbformat.read(out / "02_fail.ipynb", as_version=4)
    assert failed.cells[2].outputs[0]["output_type"] == "error"
    original = nbformat.read(course / "01_pass.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in original.cells if c.cell_type == "code")
    # notebooks run with the notebooks folder as working directory, as in Jupyter
    assert (course / "cwd.txt").read_text() == str(course)


def test_all_pass_ends_with_comparison_table(course, tmp_path):
    (course / "02_fail.ipynb").unlink()
    (course / "03_later.ipynb").rename(course / "02_later.ipynb")
    lines = []
    report = run_course.run(notebooks_dir=course, out_dir=tmp_path / "runs", fast=False, dataset="netflix",
                            log=lines.append)
    text = "\n".join(lines)
    assert report.ok and [n for n, _ in report.finished] == ["01_pass.ipynb", "02_later.ipynb"]
    assert "FULL mode" in text and "All 2 notebook(s) ran" in text
    assert any(line.startswith("  ") and line.endswith(" s  02_later.ipynb") for line in lines)  # timing summary
    assert "No model results" in text and "tfidf_logreg" in text   # the (empty) comparison says what is missing


def test_refuses_to_write_over_the_notebooks(course):
    with pytest.raises(ValueError, match="committed notebooks"):
        run_course.run(notebooks_dir=course, out_dir=course, log=lambda _: None)


def test_select_only_and_from(course):
    files = sorted(course.glob("*.ipynb"))
    assert [p.name for p in run_course.select(files, start="02")] == ["02_fail.ipynb", "03_later.ipynb"]
    assert [p.name for p in run_course.select(files, only=["01", "03"])] == ["01_pass.ipynb", "03_later.ipynb"]
    with pytest.raises(ValueError, match="matches no notebook"):
        run_course.select(files, start="09")


def test_command_line_exit_code(course, tmp_path, capsys):
    code = run_course.main(["--fast", "--dataset", "netflix", "--notebooks", str(course),
                            "--out", str(tmp_path / "runs"), "--only", "02"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED: 02_fail.ipynb" in out


def test_full_cmu_run_on_a_cpu_is_refused_unless_asked(tmp_path, monkeypatch):
    from utils.tools import costs

    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(costs, "COSTS", {"01": {"cmu": 0.5}, "03": {"cmu": 2.5}, "04b": {"cmu": 180},
                                         "05b": {"cmu": 66}, "06": {"cmu": 1}})
    lines = []
    with pytest.raises(ValueError, match="--yes"):
        run_course.check_budget(["01", "04b", "05b"], fast=False, dataset="cmu", gpu=False, log=lines.append)
    assert "04b ~180 min" in lines[0] and "total ~4.1 h" in lines[0]
    run_course.check_budget(["01", "04b"], fast=False, dataset="cmu", go_ahead=True, gpu=False, log=lines.append)
    run_course.check_budget(["01", "03"], fast=False, dataset="cmu", gpu=False, log=lines.append)   # minutes: fine
    run_course.check_budget(["04b"], fast=True, dataset="cmu", gpu=False)                          # FAST: no check
    run_course.check_budget(["04b"], fast=False, dataset="netflix", gpu=False)                     # small dataset
    with pytest.raises(ValueError, match="--budget of 2 min"):
        run_course.check_budget(["03", "06"], fast=False, dataset="cmu", budget_minutes=2, gpu=True)
    # a full-scale rehearsal replaces the built-in estimates
    log = tmp_path / "results" / "rehearsal" / "cmu-scale1.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text('{"notebook": "04b", "ok": true, "seconds": 1200}\n')
    assert run_course.cmu_cpu_minutes(["04b"]) == {"04b": 20.0}


def test_command_refuses_with_exit_code_2(monkeypatch, capsys):
    monkeypatch.setattr(run_course, "has_gpu", lambda: False)
    assert run_course.main(["--full", "--dataset", "cmu", "--only", "04b,05a,05b"]) == 2
    assert "--yes" in capsys.readouterr().err


FIGURE = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"


def _images(path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_executed_copies_keep_figures_despite_mplbackend_agg(tmp_path, monkeypatch):
    """#23: the executed copies are the site's pages; with MPLBACKEND=Agg (CI's) plt.show() would keep none."""
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(config, "PROCESSED_DIR", tmp_path / "processed")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_nb(nbs / "01_plot.ipynb", FIGURE)
    lines = []
    report = run_course.run(notebooks_dir=nbs, out_dir=tmp_path / "runs", fast=True, dataset="netflix",
                            log=lines.append, timeout=120, table=False)
    assert report.ok and _images(tmp_path / "runs" / "01_plot.ipynb") == 1
    assert any("MPLBACKEND=Agg is unset for the kernels" in line for line in lines)
    run = nbformat.read(tmp_path / "runs" / "01_plot.ipynb", as_version=4).metadata["course_run"]
    assert run["executed_by"] == "python -m utils.run_course" and run["mode"] == "FAST" and run["dataset"] == "netflix"
    import os

    assert os.environ["MPLBACKEND"] == "Agg"           # the caller's environment is left as it was


def test_nbval_writes_executed_copies_with_figures_when_asked(tmp_path):
    """CI's stage 1 (`COURSE_EXECUTED_DIR`): the notebooks nbval executes are written with their outputs,
    figures included, for the site (stage 3); the committed notebook stays stripped."""
    import os
    import subprocess
    import sys

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_nb(nbs / "01_plot.ipynb", FIGURE, "print('after the figure')")
    write_nb(nbs / "02_text.ipynb", "print(6 * 7)")
    out = tmp_path / "executed"
    env = {**os.environ, "MPLBACKEND": "Agg", "COURSE_EXECUTED_DIR": str(out), "PYTHONPATH": str(config.ROOT),
           "COURSE_DATASET": "netflix", "COURSE_FAST": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "--nbval-lax", "--nbval-current-env",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(nbs)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.ipynb")) == ["01_plot.ipynb", "02_text.ipynb"]
    assert _images(out / "01_plot.ipynb") == 1 and _images(nbs / "01_plot.ipynb") == 0
    executed = nbformat.read(out / "01_plot.ipynb", as_version=4)
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2]
    assert "after the figure" in executed.cells[2].outputs[0]["text"]
    assert executed.metadata["course_run"]["executed_by"] == "python -m pytest (nbval)"
    assert "42" in nbformat.read(out / "02_text.ipynb", as_version=4).cells[1].outputs[0]["text"]
    # each notebook's wall time, for the probe's check (`python -m utils.costs --compare`, #28)
    import json

    durations = json.loads((out / "durations.json").read_text())
    assert set(durations) == {"01", "02"} and all(0 < v < 600 for v in durations.values())
