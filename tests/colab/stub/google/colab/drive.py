"""``drive.mount``: a local folder (``$COLAB_SIM_DRIVE``) appears as ``<mountpoint>/MyDrive``."""
import os
from pathlib import Path


def mount(mountpoint: str = "/content/drive", force_remount: bool = False, timeout_ms: int = 120000,
          readonly: bool = False) -> None:
    source = Path(os.environ.get("COLAB_SIM_DRIVE", "/tmp/colab-sim-drive")).resolve()
    source.mkdir(parents=True, exist_ok=True)
    target = Path(mountpoint) / "MyDrive"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() and force_remount:
        target.unlink()
    if not target.exists():
        target.symlink_to(source, target_is_directory=True)
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms: int = 86400000) -> None:
    pass
