"""Helpers for the multi-label movie-genre course.

The notebooks tell the story; the plumbing lives here, in small modules:

- :mod:`utils.config`    paths, seed, dataset choice and the FAST switch (env vars)
- :mod:`utils.datasets`  CMU, Netflix and your own CSV as one table (download, verify, parse)
- :mod:`utils.genres`    the canonical genre taxonomy and the raw-label mapping tables
- :mod:`utils.text`      text cleaning with NLTK stopwords and Snowball stemming
- :mod:`utils.splits`    iterative-stratification train/val/test split, saved by id
- :mod:`utils.pipeline`  notebooks 01-02's steps as functions (``prepare``)
- :mod:`utils.corpus`    the prepared corpus the models train on (``load_corpus``)
- :mod:`utils.metrics`   F1 flavours, thresholds, the trivial baseline
- :mod:`utils.results`   the results format every model saves for notebook 06
"""
from .corpus import load_corpus
from .datasets import load_dataset

__all__ = ["load_corpus", "load_dataset"]
