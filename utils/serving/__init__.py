"""Serving a trained model: export folders, the FastAPI app, micro-batching, the page and a load test.

* :mod:`utils.serving.export`: one self-describing folder per model (``export_model`` / ``load_export``).
* :mod:`utils.serving.batching`: concurrent requests grouped into one forward pass.
* :mod:`utils.serving.app`: ``create_app`` (``/predict``, ``/health``, ``/model``, ``/docs``, ``/``).
* :mod:`utils.serving.loadtest`: requests/s and latency percentiles over loopback.
* :mod:`utils.serving.train`: FAST-size models for a machine where no notebook has run yet.

The commands are ``python -m utils.serve`` and ``python -m utils.loadtest``.
"""
