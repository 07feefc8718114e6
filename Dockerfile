# GPU server image: CUDA runtime + the project with its cluster extra (Ray); `engine` is the entry point.
#   docker build -t equivalence .
#   One box:     docker run --gpus all -v $PWD/data:/srv/data equivalence run --dataset digits ...
#   Workers:     docker run --gpus '"device=0"' -v $PWD/data:/srv/data equivalence worker --device cuda:0
#   Dashboard:   docker run -p 127.0.0.1:8501:8501 -v $PWD/data:/srv/data equivalence app --host 0.0.0.0
#                Streamlit listens on every interface inside the container only; publish the port on the
#                host's loopback and put a TLS proxy (nginx, Caddy) with authentication in front of it.
#   Ray cluster: docker-compose.yml starts a head (store + dashboard + `engine cluster` dispatcher) and
#                GPU worker nodes that join it with `ray start --address head:6379` (docs/scaling.md).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 EQUIV_DB=/srv/data/equivalence.duckdb \
    RAY_USAGE_STATS_ENABLED=0
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
RUN pip install '.[cluster]'
VOLUME /srv/data
# 8501: the dashboard. 6379: Ray's GCS on a head node (workers connect to it); Ray's other ports
# are chosen at random, so cluster nodes share a private network (see docker-compose.yml).
EXPOSE 8501 6379
ENTRYPOINT ["engine"]
CMD ["--help"]
