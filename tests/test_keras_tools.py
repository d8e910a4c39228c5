"""utils.tools.keras_tools: pieces shared by the neural models."""

from utils.tools.keras_tools import measure_throughput


def test_measure_throughput_warms_up_then_times_up_to_n_texts():
    calls = []
    rate = measure_throughput(lambda batch: calls.append(len(batch)), [f"plot {i}" for i in range(300)], n=100, warmup=8)
    assert calls == [8, 100] and rate > 0
