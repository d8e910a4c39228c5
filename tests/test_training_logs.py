"""TensorBoard logs (notebook 04b's `#@save training_logs` cell, reused by 05a and 05b)."""
import importlib.util

import keras
import pytest

from utils import config
from utils.lessons import training_logs


def test_each_run_gets_a_new_folder_under_runs_tensorboard():
    folder = training_logs.tensorboard_dir("04b_bilstm")
    assert folder.parent == config.ROOT / "runs" / "tensorboard" / "04b_bilstm"
    assert folder.name[:8].isdigit() and "-" in folder.name   # %Y%m%d-%H%M%S
    assert not folder.exists()                                 # nothing is written before training


def test_no_callback_when_off_or_when_tensorboard_is_missing(tmp_path, monkeypatch, capsys):
    assert training_logs.tensorboard_callbacks(keras, tmp_path, enabled=False) == []
    real = importlib.util.find_spec
    monkeypatch.setattr(training_logs.importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert training_logs.tensorboard_callbacks(keras, tmp_path) == []
    assert "pip install tensorboard" in capsys.readouterr().out


def test_the_callback_writes_to_the_given_folder(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("the tensorboard package is not installed")
    [callback] = training_logs.tensorboard_callbacks(keras, tmp_path / "frozen")
    assert isinstance(callback, keras.callbacks.TensorBoard)
    assert str(callback.log_dir) == str(tmp_path / "frozen")
