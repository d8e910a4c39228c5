"""Import TensorFlow without its C++ start-up noise, and say which device it will use.

TensorFlow writes lines such as "WARNING: All log messages before absl::InitializeLog() is called
are written to STDERR", "oneDNN custom operations are on", "Could not find cuda drivers" and
"failed call to cuInit" straight to file descriptor 2, before its logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` cannot hide them. :func:`import_tensorflow` captures fd 2 while
TensorFlow loads and looks for devices, then prints back every line that is not one of those
known start-up messages: real errors still show.
"""
from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager

NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
         "Could not find cuda drivers", "failed call to cuInit", "cpu_feature_guard",
         "This TensorFlow binary is optimized to use available CPU instructions",
         "To enable the following instructions", "Unable to register cuDNN factory",
         "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
         "computation placer already registered", "TF-TRT Warning", "absl::InitializeLog")


def is_noise(line: str) -> bool:
    return any(marker in line for marker in NOISE)


@contextmanager
def filtered_stderr():
    """Capture file descriptor 2; afterwards write back the lines that are not start-up noise."""
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode("utf-8", "replace").splitlines() if ln.strip() and not is_noise(ln)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def import_tensorflow(report: bool = False):
    """``import tensorflow`` (and find its devices) quietly; with ``report``, print the device in one line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with filtered_stderr():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    if report:
        print(f"TensorFlow {tf.__version__} on " + (f"GPU: {', '.join(g.name for g in gpus)}" if gpus
                                                    else "the CPU (no GPU found)"))
    return tf
