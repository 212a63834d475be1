"""The scenario's `objects:` made real in the model, and the ops that act on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim import program as p
from sim.kernel.clock import Steps
from sim.kernel.pipes import SimPipe
from sim.kernel.pool import SimPool
from sim.kernel.queues import SimQueue
from sim.kernel.runtime import Runtime
from sim.kernel.sync import SimBarrier, SimCondition, SimEvent, SimLock
from sim.kernel.tasks import Task

Handler = Callable[[Task, Any], Steps]


class Objects:
    def __init__(self, rt: Runtime) -> None:
        self.queues: dict[str, SimQueue] = {}
        self.pipe_of_end: dict[str, SimPipe] = {}
        self.locks: dict[str, SimLock] = {}
        self.events: dict[str, SimEvent] = {}
        self.conditions: dict[str, SimCondition] = {}
        self.barriers: dict[str, SimBarrier] = {}
        self.pools: dict[str, SimPool] = {}
        for name, definition in rt.scenario.objects.items():
            match definition:
                case p.QueueDef():
                    self.queues[name] = SimQueue(rt, definition)
                case p.PipeDef(ends=ends):
                    pipe = SimPipe(rt, definition)
                    for end in ends:
                        self.pipe_of_end[end] = pipe
                case p.LockDef(reentrant=reentrant):
                    self.locks[name] = SimLock(rt, name, 1, 1, reentrant)
                case p.SemaphoreDef(value=value, bounded=bounded):
                    self.locks[name] = SimLock(rt, name, value, value if bounded else None, False)
                case p.EventDef():
                    self.events[name] = SimEvent(rt, name)
                case p.ConditionDef():
                    condition = SimCondition(rt, name)
                    self.conditions[name] = condition
                    self.locks[name] = condition.lock
                case p.BarrierDef(parties=parties):
                    self.barriers[name] = SimBarrier(rt, name, parties)
                case p.PoolDef():
                    self.pools[name] = SimPool(rt, definition)

    def handlers(self) -> dict[type[p.Op], Handler]:
        q, pipe, lock = self.queues, self.pipe_of_end, self.locks
        ev, cv, pool = self.events, self.conditions, self.pools
        return {
            p.Put: lambda t, op: q[op.queue].put(t, op),
            p.Get: lambda t, op: q[op.queue].get(t, op),
            p.TaskDone: lambda t, op: q[op.queue].task_done(t, op),
            p.JoinQueue: lambda t, op: q[op.queue].join(t, op),
            p.Send: lambda t, op: pipe[op.end].send(t, op),
            p.Recv: lambda t, op: pipe[op.end].recv(t, op),
            p.Close: lambda t, op: pipe[op.end].close(t, op),
            p.Acquire: lambda t, op: lock[op.obj].acquire_op(t, op),
            p.Release: lambda t, op: lock[op.obj].release_op(t, op),
            p.Locked: lambda t, op: lock[op.obj].locked_op(t, op),
            p.SetEvent: lambda t, op: ev[op.event].set(t, op),
            p.ClearEvent: lambda t, op: ev[op.event].clear(t, op),
            p.WaitEvent: lambda t, op: ev[op.event].wait(t, op),
            p.Wait: lambda t, op: cv[op.condition].wait(t, op),
            p.Notify: lambda t, op: cv[op.condition].notify(t, op),
            p.BarrierWait: lambda t, op: self.barriers[op.barrier].wait(t, op),
            p.Apply: lambda t, op: pool[op.pool].apply(t, op),
            p.ApplyAsync: lambda t, op: pool[op.pool].apply_async(t, op),
            p.Map: lambda t, op: pool[op.pool].map(t, op),
            p.WaitResults: lambda t, op: pool[op.pool].wait_results(t, op),
            p.PoolClose: lambda t, op: pool[op.pool].close(t, op),
            p.PoolJoin: lambda t, op: pool[op.pool].join(t, op),
            p.PoolTerminate: lambda t, op: pool[op.pool].terminate(t, op),
            p.WithPool: lambda t, op: pool[op.pool].with_pool(t, op),
        }

    def pools_at_start(self, scenario: p.Scenario) -> list[SimPool]:
        return [self.pools[name] for name in p.pools_at_start(scenario)]
