"""Serving a trained model: export folders, the FastAPI app, micro-batching, the page and a load test.

* :mod:`utils.serving.export`: one self-describing folder per model (``export_model`` / ``load_export``).
* :mod:`utils.serving.batching`: concurrent requests grouped into one forward pass.
* :mod:`utils.serving.app`: ``create_app`` (``/predict``, ``/v1/models/<name>:predict``, ``/health``,
  ``/ready``, ``/metrics``, ``/model``, ``/docs``, ``/redoc``, ``/``), its guards, and ``app_from_env``
  (the ``--workers`` factory).
* :mod:`utils.serving.protocol`: uvicorn's HTTP protocol with a header timeout and a connection cap.
* :mod:`utils.serving.metrics`: ``/metrics`` in Prometheus' text format.
* :mod:`utils.serving.loadtest`: requests/s and latency percentiles over loopback.
* :mod:`utils.serving.train`: FAST-size models for a machine where no notebook has run yet.

The commands are ``python -m utils.serve`` and ``python -m utils.loadtest``.
"""
