# The explorer (`akg ui`) for docker-compose.yml's `app` service; it talks to the `neo4j` service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# CPU torch first, from PyTorch's own index: from PyPI, torch pulls several GB of CUDA packages.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY . .
RUN pip install . && rm -rf /src

# Models, caches and the label sets live in the volume mounted at /data (see docker-compose.yml).
RUN useradd --create-home --uid 10001 akg && mkdir -p /data && chown akg /data
USER akg
WORKDIR /data
ENV AKG_HOME=/data/akg \
    AKG_LABEL_SETS_DIR=/data/AKG_dataset/label_sets

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
# 0.0.0.0 inside the container, so that the published port reaches it; compose publishes it on 127.0.0.1 only.
CMD ["akg", "ui", "--host", "0.0.0.0", "--port", "8501", "--no-browser"]
