"""``google.colab.output``: no-ops outside a browser."""


def clear(wait: bool = False, output_tags=()) -> None:
    pass


def enable_custom_widget_manager() -> None:
    pass


def eval_js(script: str, ignore_result: bool = False, timeout_sec=None):
    return None
