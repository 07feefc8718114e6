"""CPU threads per training process, chosen so that the processes of one host do not oversubscribe it.

Torch's default is one intra-op thread per core in every process: two workers on two cores then
spin four OpenMP threads on two cores, and both jobs ran 6.4x slower than one after the other
(issue 18). A process takes its share instead: the cores it may use divided by the processes
training on this host, at least one. A GPU process needs only a few host threads (batch indexing,
kernel launches): more only contend with the other processes.
"""
from __future__ import annotations

import os

GPU_HOST_THREADS = 4
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share(trainers_on_host: int) -> int:
    return max(1, usable_cores() // max(1, trainers_on_host))


def choose(requested: int | None, device_type: str, trainers_on_host: int) -> int:
    if requested is not None:
        return requested
    if device_type == "cuda":
        return min(GPU_HOST_THREADS, usable_cores())
    return share(trainers_on_host)


def apply(n: int) -> int:
    """Set the thread count for this process (torch's pools, and OpenMP/MKL for anything it starts)."""
    for var in ENV_VARS:
        os.environ[var] = str(n)
    import torch
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass  # the inter-op pool can be sized once, before its first use; it is rarely used in eager mode
    return n
