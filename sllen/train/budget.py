"""--minutes: a run's step count refitted to its measured speed as it goes."""

from __future__ import annotations

# A time-budgeted run measures its speed after these warm-up steps (workers starting, cuDNN
# choosing algorithms) and refits its length from FIT_AFTER steps on.
WARMUP_STEPS = 10
FIT_AFTER = 20
FIT_EVERY = 10  # steps; every process refits at the same steps (rank 0's total is broadcast)


def fit_steps(step: int, per_step_s: float, elapsed_s: float, budget_s: float) -> int:
    """The total step count that ends a run started ``elapsed_s`` ago, now at ``step``, near
    ``budget_s`` at ``per_step_s`` seconds a step (validation and checkpoints included in it)."""
    if elapsed_s >= budget_s:
        return step
    return step + int((budget_s - elapsed_s) / per_step_s)


def refit_total(
    step: int,
    done: int,
    total: int,
    elapsed_s: float,
    since_warm_s: float,
    budget_s: float,
    reserve_s: float,
) -> int:
    """The run's new length at ``step`` (``done`` steps into this start, ``total`` planned),
    fitted to the speed since warm-up once it is measured; ``reserve_s`` of the budget is left
    for the last step's validation and save, which come after it."""
    per_step = since_warm_s / (done - WARMUP_STEPS) if done >= FIT_AFTER else 0.0
    if per_step > 0:  # a coarse clock can read no time at all: keep the length then
        return fit_steps(step, per_step, elapsed_s, budget_s - reserve_s)
    if elapsed_s >= budget_s:
        return step  # out of time before the speed was measured: stop here
    return total
