# The course's serving API in a container: CPU only, a non-root user, the model folder as a volume.
#
#   python -m utils.serve --model tfidf_logreg --dataset netflix --train-if-missing --export exports/netflix/tfidf_logreg
#   docker build -t movie-genres .                                   # neural: TF-IDF, BiLSTM, MiniLM
#   docker build --build-arg FAMILY=tfidf -t movie-genres-tfidf .    # slim: TF-IDF only, no TensorFlow
#   docker run --rm -p 8000:8000 -v "$PWD/exports/netflix/tfidf_logreg:/model:ro" movie-genres
#   open http://127.0.0.1:8000/
#
# Versions are the pins of requirements.txt (one source). FAMILY=tfidf installs the TF-IDF model's
# packages only (TF-IDF never imports TensorFlow; a test serves it with TensorFlow's imports blocked).
# The neural image has ONE TensorFlow: tensorflow-cpu in place of tensorflow (no CUDA libraries), and
# tensorflow-text / keras-hub installed without their dependencies, whose metadata would pull the full
# tensorflow in beside it (keras-hub's other dependencies are listed by hand).
FROM python:3.11-slim

ARG FAMILY=neural
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 NLTK_DATA=/opt/nltk_data HF_HUB_OFFLINE=1
WORKDIR /app

COPY requirements.txt /tmp/requirements.txt
RUN set -e; \
    if [ "$FAMILY" = "tfidf" ]; then \
        grep -E '^(numpy|scipy|pandas|scikit-learn|nltk|fastapi|uvicorn|httptools|uvloop)==' \
            /tmp/requirements.txt > /tmp/serve-requirements.txt; \
        python -m pip install -r /tmp/serve-requirements.txt; \
    else \
        grep -E '^(tensorflow|keras|safetensors|numpy|scipy|pandas|pyarrow|scikit-learn|nltk|fastapi|uvicorn|httptools|uvloop)==' \
            /tmp/requirements.txt | sed 's/^tensorflow==/tensorflow-cpu==/' > /tmp/serve-requirements.txt; \
        grep -E '^(tensorflow-text|keras-hub)==' /tmp/requirements.txt > /tmp/nodeps-requirements.txt; \
        python -m pip install -r /tmp/serve-requirements.txt absl-py packaging regex rich kagglehub sentencepiece tokenizers; \
        python -m pip install --no-deps -r /tmp/nodeps-requirements.txt; \
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
