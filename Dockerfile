# The course's serving API in a container: CPU TensorFlow, a non-root user, the model folder as a volume.
#
#   python -m utils.serve --model tfidf_logreg --export exports/netflix/tfidf_logreg   # once, on the host
#   docker build -t movie-genres .
#   docker run --rm -p 8000:8000 -v "$PWD/exports/netflix/tfidf_logreg:/model:ro" movie-genres
#   open http://127.0.0.1:8000/
#
# Any export folder or model folder works as /model (TF-IDF, BiLSTM, MiniLM). Versions are the pins of
# requirements.txt (one source), with tensorflow-cpu in place of tensorflow: no CUDA libraries.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 NLTK_DATA=/opt/nltk_data HF_HUB_OFFLINE=1
WORKDIR /app

COPY requirements.txt /tmp/requirements.txt
RUN grep -E '^(tensorflow|keras|keras-hub|tensorflow-text|safetensors|numpy|scipy|pandas|pyarrow|scikit-learn|nltk|fastapi|uvicorn|httptools|uvloop)==' \
        /tmp/requirements.txt | sed 's/^tensorflow==/tensorflow-cpu==/' > /tmp/serve-requirements.txt \
    && python -m pip install -r /tmp/serve-requirements.txt \
    && python -m nltk.downloader -d /opt/nltk_data stopwords

COPY utils/ /app/utils/
RUN useradd --create-home --uid 10001 course && mkdir -p /model && chown course /model
USER course

VOLUME ["/model"]
EXPOSE 8000
# /ready runs a tiny prediction through the model thread (or sees its heartbeat): a stuck model turns it 503
HEALTHCHECK --interval=30s --timeout=8s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=7)"
CMD ["python", "-m", "utils.serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8000"]
