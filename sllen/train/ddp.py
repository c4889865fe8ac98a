"""The trainer's dealings with its sibling processes under torchrun (WORLD_SIZE > 1).

Joining the group, agreeing on a stop, checking the replicas before rank 0 saves, and saying
in one line when a sibling is gone: torchrun's rendezvous variables missing (a launch without
torchrun) or a peer that died (killed, out of memory, a node lost) are the environment's
faults, not sllen bugs, and the surviving ranks used to end on a raw gloo/NCCL traceback.
"""

from __future__ import annotations

import os
import re

import torch
import torch.distributed as dist

from sllen.runtime.errors import InputError, SllenError


class PeerLostError(SllenError, RuntimeError):
    """Another process of a distributed run stopped: this one cannot go on alone."""


def join_group(device: str) -> None:
    """init_process_group from torchrun's variables; a partial set is one line."""
    backend = "nccl" if torch.cuda.is_available() and device != "cpu" else "gloo"
    try:
        dist.init_process_group(backend)
    except ValueError as e:  # env:// rendezvous: MASTER_ADDR/MASTER_PORT/RANK not set
        raise InputError(
            f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} says this is one of several processes, "
            f"but {str(e).splitlines()[0]}: launch several with torchrun (docs/distributed.md) "
            "or unset WORLD_SIZE for one"
        ) from None


def process_count_note(state: dict, world: int, batch_size: int) -> str | None:
    """A resume on another number of processes: the batch per step changes (said, not
    refused: a requeued job may get fewer GPUs)."""
    made = int(state.get("world_size", world))
    if made == world:
        return None
    return (
        f"the checkpoint was made by {made} processes, this run has {world}: a step now sees "
        f"{world} x {batch_size} pairs (was {made} x {batch_size})"
    )


def agree_to_stop(asked: bool, device: torch.device) -> bool:
    """Whether any process was asked to stop (Ctrl-C, SIGTERM): every process stops after the
    same step, so they all reach the checkpoint and the closing collectives together. A
    one-element all-reduce per step, next to DDP's gradient all-reduce."""
    flag = torch.tensor([int(asked)], dtype=torch.int32, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def check_replicas_in_sync(model: torch.nn.Module) -> None:
    """DDP keeps every process's weights identical; verify it before rank 0 saves."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    sums = [torch.zeros_like(total) for _ in range(dist.get_world_size())]
    dist.all_gather(sums, total)
    values = torch.stack(sums)
    if float(values.max() - values.min()) > 1e-6 * float(values.abs().max() + 1):
        raise RuntimeError(f"distributed replicas diverged: parameter sums {values.tolist()}")


def is_peer_loss(e: BaseException) -> bool:
    """A collective that failed because a peer went away: torch's DistError family (NCCL,
    the store) or gloo's transport errors, which torch raises as a plain RuntimeError."""
    if isinstance(e, dist.DistError):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and ("gloo" in text or "NCCL" in text)


def peer_lost(e: BaseException, checkpoint_step: int | None) -> PeerLostError:
    where = (
        f"the checkpoint at step {checkpoint_step} is kept (--resume goes on from it)"
        if checkpoint_step
        else "no checkpoint was saved yet"
    )
    # gloo's text: "[.../gloo/transport/tcp/pair.cc:553] Connection closed by peer [addr].
    # This is typically caused by ... GLHF!": its first sentence, without the source line
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(e).strip().split("\n")[0])
    reason = text.split(". ")[0] or type(e).__name__
    return PeerLostError(f"another process of the run stopped ({reason}): {where}")
