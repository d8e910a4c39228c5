"""``google.colab.output``: no-ops outside a browser."""


def clear(wait: bool = False, output_tags=()) -> None:
    pass


def enable_custom_widget_manager() -> None:
    pass


def eval_js(script: str, ignore_result: bool = False, timeout_sec=None):
    return None


def serve_kernel_port_as_window(port: int, path: str = "/", anchor_text=None) -> None:
    """Colab opens the kernel's ``port`` through its proxy in a new tab; here one printed line says so."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int in 1..65535, not {port!r}")
    print(f"[google.colab stand-in] would open port {port}{path} through Colab's proxy")
