"""Several training processes on the CPU (gloo), for the multi-process tests.

A rank's target leaves its process group alone when it ends: a forked child
ends with ``os._exit`` (multiprocessing's), which tears nothing down, while
``destroy_process_group()`` can deadlock on torch 2.1: its ProcessGroup
binding keeps the GIL while joining gloo's worker threads, and a worker
thread that is still releasing the last collective's output tensor (a tensor
Python has let go of) waits for the GIL to free its Python object
(pytorch/pytorch#154976 releases the GIL there).
"""
import socket
from typing import Any, Callable, List

import torch.multiprocessing as mp


def free_port() -> int:
    """A free TCP port on the loopback interface, for ``MASTER_PORT``."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_ranks(target: Callable, world_size: int, *args, timeout: float = 600) -> List[int]:
    """Run ``target(rank, port, *args)`` in ``world_size`` forked processes.

    Fork, so that the children inherit the calling test module (pytest's
    importlib mode makes test modules unimportable by name in a spawned child).

    Returns:
        list[int]: The exit codes, by rank.

    Raises:
        AssertionError: If a process is still running after ``timeout`` seconds
            (it is killed first).
    """
    ctx = mp.get_context('fork')
    port = free_port()
    procs = [ctx.Process(target=target, args=(rank, port, *args)) for rank in range(world_size)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=timeout)
    hung = [rank for rank, proc in enumerate(procs) if proc.is_alive()]
    for rank in hung:
        procs[rank].kill()
    assert not hung, f'training process(es) of rank {hung} hung'
    return [proc.exitcode for proc in procs]


def gather_from_ranks(target: Callable, world_size: int, num_items: int,
                      timeout: float = 300) -> List[Any]:
    """Run ``target(rank, world_size, port, queue)`` in forked processes, collect their items.

    Reads ``num_items`` items from the queue before joining (a process does
    not exit while the items it put are unread), then checks every process
    exited with 0. Put plain values (lists, numpy copies) in the queue: a
    queued tensor is shared memory that vanishes when its process exits.

    Returns:
        list: The items, in the order they arrived.
    """
    ctx = mp.get_context('fork')
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=target, args=(rank, world_size, port, queue))
             for rank in range(world_size)]
    for proc in procs:
        proc.start()
    items = [queue.get(timeout=timeout) for _ in range(num_items)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0, f'rank {procs.index(proc)} exited with {proc.exitcode}'
    return items
