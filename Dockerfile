# GPU server image: CUDA runtime + the project; `engine` is the entry point.
#   docker build -t equivalence .
#   docker run --gpus all -v $PWD/data:/srv/data equivalence run --dataset digits ...
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 EQUIV_DB=/srv/data/equivalence.duckdb
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /srv
# A CUDA build of torch from PyPI's default index; pin it to match the host driver if needed.
RUN pip install "torch==2.14.1" "torchvision==0.29.1"
COPY pyproject.toml README.md ./
COPY app ./app
COPY engine ./engine
COPY store ./store
RUN pip install .
VOLUME /srv/data
EXPOSE 8501
ENTRYPOINT ["engine"]
CMD ["--help"]
