"""``google.colab.output``: the functions a course notebook may call, with colabtools' signatures.

Signatures and the deprecation warning are copied from googlecolab/colabtools
(google/colab/output/_util.py and _js.py at 3c07d77). Colab's browser reaches a port of the VM only
through its proxy (``google.colab.kernel.proxyPort`` in JavaScript); here the "proxy" is the port
itself on 127.0.0.1, and showing a page fetches it, so a page that does not answer fails the stage.
"""
import re
import urllib.request

WINDOW_WARNING = ('\x1b[31mWarning: This function may stop working due to changes in browser security.\n'
                  'Try `serve_kernel_port_as_iframe` instead. \x1b[0m')
_PROXY = re.compile(r"google\.colab\.kernel\.proxyPort\(\s*(\d+)")


def clear(wait=False, output_tags=()):
    pass


def enable_custom_widget_manager(version=None):
    pass


def disable_custom_widget_manager():
    pass


def _proxy_url(port) -> str:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int in 1..65535, not {port!r}")
    return f"http://127.0.0.1:{port}/"


def eval_js(script, ignore_result=False, timeout_sec=None):
    """Only ``google.colab.kernel.proxyPort(port)`` has an answer here: the URL the browser would use."""
    found = _PROXY.search(script)
    if ignore_result or not found:
        return None
    return _proxy_url(int(found.group(1)))


def _fetch(port, path):
    url = _proxy_url(port).rstrip("/") + "/" + path.lstrip("/")
    with urllib.request.urlopen(url, timeout=30) as answer:   # raises when nothing answers
        body = answer.read(200_000).decode("utf-8", "replace")
        title = re.search(r"<title>(.*?)</title>", body, re.S | re.I)
        return answer.status, (title.group(1).strip() if title else "")


def serve_kernel_port_as_iframe(port, path='/', width='100%', height='400', cache_in_notebook=False):
    """Colab shows the page in an iframe of the cell's output; here it is fetched and one line says so."""
    status, title = _fetch(port, path)
    print(f"[google.colab stand-in] iframe {width} x {height}: port {port}{path} answered HTTP {status} ({title!r})")


def serve_kernel_port_as_window(port, path='/', anchor_text=None, skip_warning=False):
    """DEPRECATED in colabtools ("Browser security updates have broken this feature"); mirrored with its warning."""
    if not skip_warning:
        print(WINDOW_WARNING)
    status, _ = _fetch(port, path)
    print(f"[google.colab stand-in] link to port {port}{path} (HTTP {status}): {anchor_text or ''}")
