"""utils.tools.quiet_tf: TensorFlow's start-up noise is dropped, real messages are kept."""
import os
import subprocess
import sys

from utils import config
from utils.tools.quiet_tf import filtered_stderr, is_noise


def test_noise_is_dropped_and_other_lines_kept(capfd):
    with filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
        os.write(2, b"I0000 00:00:1.2 port.cc:153] oneDNN custom operations are on. You may see ...\n")
        os.write(2, b"E0000 00:00:1.3 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n")
        os.write(2, b"a real error the student must see\n")
    err = capfd.readouterr().err
    assert err.strip() == "a real error the student must see"
    assert is_noise("I0000 cudart_stub.cc:31] Could not find cuda drivers on your machine") and not is_noise("boom")


def test_importing_tensorflow_prints_the_device_and_no_noise():
    code = ("import sys; sys.path.insert(0, %r); from utils.tools.quiet_tf import import_tensorflow; "
            "import_tensorflow(report=True)" % str(config.ROOT))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert run.returncode == 0 and "TensorFlow" in run.stdout and ("CPU" in run.stdout or "GPU" in run.stdout)
    assert "absl::InitializeLog" not in run.stderr and "oneDNN" not in run.stderr, run.stderr
