# harness with its built-in plugins (k-means, DEC, DLFC) for an NVIDIA GPU server.
#   docker build -t harness-gpu .
#   docker run --rm --gpus all -v "$PWD/data:/data" -v "$PWD/runs:/runs" harness-gpu run --datasets mnist
# The frameworks come as in requirements-gpu.txt (torch's CUDA 13 build, DEC on JAX with CUDA 13);
# the base gives the CUDA 13 runtime and cuDNN they run against; the host needs only the driver.
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

# Ubuntu's Python (3.12; harness needs 3.11 or later) in a virtual environment of its own.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
RUN python3 -m venv /opt/venv

# The checkout (less what .dockerignore leaves out), installed as requirements-gpu.txt says.
WORKDIR /opt/harness
COPY . /opt/harness
RUN pip install -r requirements-gpu.txt

# Datasets and the tracking store live outside the image; so do the cache of pretrained weights
# and the SLURM folder (./slurm of the working directory).
ENV HARNESS_DATA_DIR=/data \
    HARNESS_CACHE_DIR=/runs/cache \
    MLFLOW_TRACKING_URI=sqlite:////runs/mlflow.db
VOLUME ["/data", "/runs"]
WORKDIR /runs
ENTRYPOINT ["harness"]
CMD ["--help"]
