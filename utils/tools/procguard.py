"""Run a command so that nothing it starts outlives it, or outlives the process that asked for it.

    python -m utils.tools.procguard --parent PID [--pid-env NAME] -- COMMAND [ARGS ...]

The benchmark runs each model's worker under this small guard. A worker starts pools of its own
(joblib/loky workers, their resource trackers, TensorFlow's threads): when the benchmark was
killed with ``kill -9``, the worker died with it (``PR_SET_PDEATHSIG``) but the pool's processes,
re-parented to init, lived on for minutes, holding hundreds of MB. The guard prevents that:

* it is a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``): every process the command starts,
  at any depth, stays its descendant even when its own parent dies, so it can always be found;
* the command runs in a process group of its own (the fallback where there is no subreaper);
* when the process ``--parent`` ends (noticed at once through ``PR_SET_PDEATHSIG``, and by polling),
  or on SIGTERM, it kills the whole tree and the group, then exits;
* when the command ends, whatever it left running is killed, and the guard exits with its code.

It imports nothing heavy (psutil only), so it reacts within a fraction of a second whatever the
command is busy with. ``--pid-env NAME`` hands the guard's pid to the command (which can then end
itself if the guard is killed).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL_S = 0.1


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Linux: this process gets ``sig`` when its parent ends, even by ``kill -9``; False elsewhere."""
    return _prctl(PR_SET_PDEATHSIG, int(sig))


def kill_tree(root_pid: int, group: int | None = None, timeout: float = 5.0) -> None:
    """SIGKILL every descendant of ``root_pid`` (not ``root_pid`` itself) and the process group ``group``."""
    import psutil

    try:
        procs = psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        procs = []
    if group is not None:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)       # reaps those that are our children


def _reap_orphans(keep: int) -> None:
    """Collect the exit status of re-parented processes that ended (zombies), except ``keep``."""
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for p in children:
        if p.pid == keep:
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(p.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError, OSError):
            pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.tools.procguard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--parent", type=int, required=True, help="end everything when this process ends")
    parser.add_argument("--pid-env", default=None, help="environment variable that gives the command the guard's pid")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")

    stop: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    signal.signal(signal.SIGHUP, lambda *_: stop.append("SIGHUP"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C: the parent decides, and stops us with SIGTERM
    subreaper = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != args.parent:                   # the parent died before we could watch it
        return 137
    env = dict(os.environ)
    if args.pid_env:
        env[args.pid_env] = str(os.getpid())
    child = subprocess.Popen(command, env=env, start_new_session=True)
    while True:
        code = child.poll()
        if code is not None:
            break
        if stop or os.getppid() != args.parent:
            kill_tree(os.getpid(), group=child.pid)
            return 137
        if subreaper:
            _reap_orphans(keep=child.pid)
        time.sleep(POLL_S)
    # the command ended: what it started and left behind (pool workers, trackers) ends now too
    kill_tree(os.getpid(), group=None if subreaper else child.pid)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
