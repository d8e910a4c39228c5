# The course's serving API in a container: CPU only, a non-root user, the model folder as a volume.
#
#   python -m utils.serve --model tfidf_logreg --dataset netflix --train-if-missing --export exports/netflix/tfidf_logreg
#   docker build -t movie-genres .                                   # neural: TF-IDF, BiLSTM, MiniLM
#   docker build --build-arg FAMILY=tfidf -t movie-genres-tfidf .    # slim: TF-IDF only, no TensorFlow
#   docker run --rm -p 8000:8000 -v "$PWD/exports/netflix/tfidf_logreg:/model:ro" movie-genres
#   open http://127.0.0.1:8000/
#
# Every package is pinned with its SHA-256 hashes (docker/requirements-*.txt, written by
# `bash docker/lock.sh` from the pins of requirements.txt, the one source of versions) and installed
# with --require-hashes --no-deps: pip installs exactly the locked files or fails. FAMILY=tfidf
# installs the TF-IDF model's packages only (TF-IDF never imports TensorFlow; a test serves it with
# TensorFlow's imports blocked). The neural image has ONE TensorFlow: tensorflow-cpu in place of
# tensorflow (no CUDA libraries), and tensorflow-text / keras-hub from their own lock, whose metadata
# would pull the full tensorflow in beside it (keras-hub's other dependencies are in the neural lock).
#
# The base image is pinned by digest: python:3.11-slim as Docker Hub published it on 2026-08-05 (Python
# 3.11.15 on Debian trixie; the multi-platform index digest, as docker-library/repo-info lists it in
# repos/python/remote/3.11-slim.md). `bash docker/pin-base-image.sh` writes today's digest here (or copy
# the "Digest:" line of `docker buildx imagetools inspect python:3.11-slim`): pin again to take the base
# image's security updates.
FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

ARG FAMILY=neural
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 NLTK_DATA=/opt/nltk_data HF_HUB_OFFLINE=1
WORKDIR /app

COPY docker/requirements-tfidf.txt docker/requirements-neural.txt docker/requirements-neural-nodeps.txt /tmp/
RUN set -e; \
    if [ "$FAMILY" = "tfidf" ]; then \
        python -m pip install --require-hashes --no-deps -r /tmp/requirements-tfidf.txt; \
        python -m pip check; \
    else \
        python -m pip install --require-hashes --no-deps -r /tmp/requirements-neural.txt; \
        python -m pip install --require-hashes --no-deps -r /tmp/requirements-neural-nodeps.txt; \
    fi; \
    python -m nltk.downloader -d /opt/nltk_data stopwords

COPY utils/ /app/utils/
RUN useradd --create-home --uid 10001 course && mkdir -p /model && chown course /model
USER course

VOLUME ["/model"]
EXPOSE 8000
# /ready runs a tiny prediction through the model thread (or sees its heartbeat): a stuck model turns it 503
HEALTHCHECK --interval=30s --timeout=8s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=7)"
CMD ["python", "-m", "utils.serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8000"]
