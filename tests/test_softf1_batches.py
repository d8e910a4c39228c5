"""utils.tools.softf1_batches: the per-batch statistics of the soft-F1 batching study."""
import numpy as np
import pytest

from utils.tools import softf1_batches


def test_batch_stats_count_the_genres_missing_from_each_batch():
    x = np.ones((8, 3), dtype=np.int32)                       # 8 plots of 3 tokens, no padding
    y = np.zeros((8, 3), dtype=np.float32)
    y[:, 0] = 1                                               # genre 0 in every plot
    y[0, 1] = 1                                               # genre 1 only in the first plot; genre 2 never
    empty, drift = softf1_batches.batch_stats(x, y, batch_size=4, seed=None, bucket=False)
    assert empty == pytest.approx((1 + 2) / 2)                # batch 1 lacks genre 2, batch 2 lacks genres 1 and 2
    freq = y.mean(axis=0)
    expected = np.mean([np.abs(y[:4].mean(0) - freq).mean(), np.abs(y[4:].mean(0) - freq).mean()])
    assert drift == pytest.approx(expected)


def test_seeds_must_be_integers():
    with pytest.raises(SystemExit):
        softf1_batches.main(["--seeds", "one,two"])
