"""The agent's use cases, built once by the composition root (app.build) and called by the
handlers: run a submitted task as a conversation between a model and the tools, within its
budgets; stop it when a client cancels it; run again the tasks whose worker died.

A task.input_provided resumes a run that waited for its client's answer (runner.resume, from
the checkpoint the run saved when the model called ask_user; checkpoints.py).

One task.submitted, in the order the code runs it:

    handlers.on_task_submitted
      -> runner.AttemptRunner.run      claim the run (task.started), keep its lease
         -> work.AttemptWork.run       the model/tool loop, budgets, staged artifacts
            -> recording.AttemptRecorder   each step and the end, committed with its events
      <- a stopped attempt: task.cancelled, a Defer, or the lease handed back on shutdown

Every event an attempt emits goes to the outbox in the transaction that moves its ``runs``
row, guarded by the attempt number, so an attempt that lost the run emits nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.cancellation import Cancellation
from agent.recovery import Recovery
from agent.runner import AttemptRunner
from agent.running import RunningAttempts
from agent.waits import WaitExpiry


@dataclass(frozen=True)
class AgentService:
    runner: AttemptRunner  # task.submitted
    cancellation: Cancellation  # task.cancel_requested
    recovery: Recovery  # runs whose worker died and whose message is gone
    waits: WaitExpiry  # runs that waited for input past their max_wait_seconds
    # The attempts this process runs, by task: where a cancel request finds the one to stop
    # (the cancel listener reaches it here too).
    running: RunningAttempts
