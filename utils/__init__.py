"""Plumbing for the multi-label movie-genre course. The lessons are in the notebooks.

Every model, loss, optimiser schedule and threshold search is written in the notebook
that teaches it. Cells marked ``#@save <module>`` are exported, unchanged, into
:mod:`utils.lessons` by ``python -m utils.export`` (the d2l way), so that the
benchmark, ``predict`` and the other notebooks run the very code the student read.
Everything else here is plumbing, grouped by what it is for:

- :mod:`utils.config`       paths, seed, dataset choice and the FAST switch (env vars)
- :mod:`utils.data`         download, datasets (CMU, Netflix, CSV), genre taxonomy, text
                            cleaning, splits, the prepared corpus, the embeddings cache
- :mod:`utils.evaluation`   metric primitives (F1 flavours), the results format, model comparison
- :mod:`utils.lessons`      GENERATED from the notebooks' ``#@save`` cells: do not edit
- :mod:`utils.modelfiles`   saving and loading trained models (``predictor.json`` + files),
                            encoder checkpoints, and the benchmark run of each model family
- :mod:`utils.serving`      exported model folders, the FastAPI app and page, micro-batching,
                            the load test (notebook 09)
- :mod:`utils.tools`        the notebook setup cell, the benchmark, ``predict``, the course
                            runner, Colab badges, the export command, ``serve``, ``loadtest``

``python -m utils.benchmark``, ``utils.predict``, ``utils.run_course``, ``utils.colab``,
``utils.export``, ``utils.serve`` and ``utils.loadtest`` are the commands.
"""
from utils.data.corpus import load_corpus
from utils.data.datasets import load_dataset

__all__ = ["load_corpus", "load_dataset"]
