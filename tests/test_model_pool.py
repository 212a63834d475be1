"""Golden tests of Pool in the model: callbacks in the result handler, chunks of
map and imap, apply, terminate, the `with` form, maxtasksperchild, errors."""

from __future__ import annotations

import itertools

from model_helpers import MS, US, Run, machine, run_file, run_text

from sim.trace import JobEvent, MessageEvent

HANDLER = "main.p.result_handler"


def results_in_arrival_order(run: Run, pool: str = "p") -> list[int]:
    """Jobs in the order the result handler got their results from the outqueue.
    A worker puts a job's result right after its finish (or error) event."""
    last_job: dict[str, int] = {}
    job_of_msg: dict[int, int] = {}
    order: list[int] = []
    outqueue = f"{pool}.outqueue"
    for e in run.events:
        if isinstance(e, JobEvent) and e.op in ("finish", "error"):
            last_job[e.task] = e.job
        elif isinstance(e, MessageEvent) and e.obj == outqueue:
            if e.op == "put" and e.task in last_job:
                job_of_msg[e.msg] = last_job.pop(e.task)
            elif e.op == "get" and e.msg in job_of_msg:
                order.append(job_of_msg[e.msg])
    return order


def test_callbacks_run_in_the_result_handler_in_arrival_order() -> None:
    run = run_text(f"""
name: callbacks
{machine(4)}
objects:
  p: {{type: pool, workers: 2}}
functions:
  slow: [{{compute: 5ms}}]
  fast: [{{compute: 1ms}}]
  cb: [{{print: got it}}]
main:
  - apply_async: {{pool: p, function: slow, callback: cb}}
  - apply_async: {{pool: p, function: fast, times: 3, callback: cb}}
  - close_pool: p
  - join_pool: p
""")
    callbacks = run.jobs("callback")
    assert {c.task for c in callbacks} == {HANDLER}
    assert {o.task for o in run.outputs()} == {HANDLER}
    # One worker runs the slow job (5 ms), the other the three fast ones in turn.
    assert [(c.job, c.t) for c in callbacks] == [(2, 1 * MS), (3, 2 * MS), (4, 3 * MS), (1, 5 * MS)]
    assert [c.job for c in callbacks] == results_in_arrival_order(run)
    finished = {j.job: j.t for j in run.jobs("finish")}
    assert all(c.t >= finished[c.job] for c in callbacks)
    assert run.end.status == "complete"


def test_slow_callbacks_hold_every_later_result_back() -> None:
    run = run_file("slow_callback.yaml")
    callbacks = run.jobs("callback")
    assert len(callbacks) == 6 and {c.task for c in callbacks} == {HANDLER}
    assert [c.job for c in callbacks] == results_in_arrival_order(run)
    # One after another in one thread: each callback's 20 ms follows the last.
    gaps = [b.t - a.t for a, b in itertools.pairwise(callbacks)]
    assert all(gap >= 20 * MS for gap in gaps), gaps
    # The results were all in long before the callbacks were done with them.
    last_finish = max(j.t for j in run.jobs("finish"))
    assert callbacks[-1].t >= last_finish + 2 * 20 * MS
    [ready] = [o for o in run.outputs("main") if o.text == "all results in"]
    assert ready.t >= callbacks[-1].t


def chunk_sizes(run: Run, job: int, per_item: int) -> list[int]:
    """Items in each chunk of `job`, in chunk order, read from how long each ran;
    checks that the chunks are numbered 0..n-1 and each ran exactly once."""
    starts = [(j.chunk, j.t) for j in run.jobs("start") if j.job == job]
    finishes = {j.chunk: j.t for j in run.jobs("finish") if j.job == job}
    assert sorted(c for c, _ in starts if c is not None) == list(range(len(starts)))
    assert set(finishes) == {c for c, _ in starts}
    return [(finishes[c] - t) // per_item for c, t in sorted(starts, key=lambda s: s[0] or 0)]


def test_map_imap_and_chunksize() -> None:
    run = run_text(f"""
name: chunks
{machine(4)}
objects:
  p: {{type: pool, workers: 2}}
functions:
  f: [{{compute: 1ms}}]
main:
  - map: {{pool: p, function: f, items: 10}}
  - imap: {{pool: p, function: f, items: 10}}
  - starmap: {{pool: p, function: f, items: 10, chunksize: 3}}
  - imap_unordered: {{pool: p, function: f, items: 4}}
  - close_pool: p
  - join_pool: p
""")
    # map: ceil(10 / (4 x 2 workers)) = 2 items a chunk, so 5 chunks (0..4).
    assert chunk_sizes(run, 1, 1 * MS) == [2, 2, 2, 2, 2]
    assert chunk_sizes(run, 2, 1 * MS) == [1] * 10  # imap: chunksize 1
    assert chunk_sizes(run, 3, 1 * MS) == [3, 3, 3, 1]  # explicit chunksize
    assert chunk_sizes(run, 4, 1 * MS) == [1] * 4
    # One submit per call, one result per call (map has no per-chunk callback).
    assert [j.job for j in run.jobs("submit")] == [1, 2, 3, 4]
    assert [j.job for j in run.jobs("result")] == [1, 2, 3, 4]
    # Each call returns only when its last chunk is done.
    for job in (1, 2, 3, 4):
        last = max(j.t for j in run.jobs("finish") if j.job == job)
        [result] = [j for j in run.jobs("result") if j.job == job]
        assert result.t == last
    assert run.end.status == "complete"


def test_apply_is_synchronous() -> None:
    run = run_text(f"""
name: apply
{machine(4)}
objects:
  p: {{type: pool, workers: 2}}
functions:
  f: [{{compute: 2ms}}]
main:
  - apply: {{pool: p, function: f}}
  - apply: {{pool: p, function: f}}
  - apply: {{pool: p, function: f}}
  - close_pool: p
  - join_pool: p
""")
    # With the machinery free, job k runs from 2(k-1) ms to 2k ms, and the next
    # is submitted only when the caller has its result.
    spans = {
        k: [
            next(j.t for j in run.jobs(op) if j.job == k)
            for op in ("submit", "start", "finish", "result")
        ]
        for k in (1, 2, 3)
    }
    assert spans == {
        1: [0, 0, 2 * MS, 2 * MS],
        2: [2 * MS, 2 * MS, 4 * MS, 4 * MS],
        3: [4 * MS, 4 * MS, 6 * MS, 6 * MS],
    }
    waits = [i for i in run.intervals("main", "blocked") if i[2] == "p.result"]
    assert waits == [
        (0, 2 * MS, "p.result"),
        (2 * MS, 4 * MS, "p.result"),
        (4 * MS, 6 * MS, "p.result"),
    ]


def test_terminate_ends_live_workers_with_minus_15() -> None:
    run = run_text(f"""
name: terminate
{machine(4)}
objects:
  p: {{type: pool, workers: 2}}
functions:
  slow: [{{compute: 50ms}}]
  cb: [{{print: never}}]
main:
  - apply_async: {{pool: p, function: slow, times: 3, callback: cb}}
  - sleep: 10ms
  - terminate_pool: p
  - join_pool: p
  - print: joined
""")
    for worker in ("p.worker1", "p.worker2"):
        end = run.end_of(worker)
        assert (end.t, end.exit_code, end.cause) == (10 * MS, -15, "terminated")
    assert len(run.jobs("start")) == 2  # the third job never reached a worker
    assert run.jobs("finish") == [] and run.jobs("callback") == []
    assert [(o.t, o.text) for o in run.outputs()] == [(10 * MS, "joined")]
    for handler in ("worker_handler", "task_handler", "result_handler"):
        assert run.end_of(f"main.p.{handler}").t == 10 * MS
    assert run.end.status == "complete"


def test_with_pool_terminates_at_the_end_of_the_block() -> None:
    run = run_text(f"""
name: with-pool
{machine(4)}
objects:
  p: {{type: pool, workers: 2}}
functions:
  f: [{{compute: 1ms}}]
  slow: [{{compute: 50ms}}]
main:
  - sleep: 1ms
  - with_pool:
      pool: p
      do:
        - map: {{pool: p, function: f, items: 4}}
        - apply_async: {{pool: p, function: slow}}
        - sleep: 5ms
  - print: after with
""")
    # Created where the block starts, not at the top of the program.
    workers = [e for e in run.created() if e.kind == "worker"]
    assert [(w.task, w.t) for w in workers] == [("p.worker1", 1 * MS), ("p.worker2", 1 * MS)]
    # map: 4 items in 4 chunks of 1 on two workers takes 2 ms; then 5 ms more.
    block_end = 1 * MS + 2 * MS + 5 * MS
    ends = [run.end_of(w.task) for w in workers]
    assert [(e.t, e.exit_code, e.cause) for e in ends] == [(block_end, -15, "terminated")] * 2
    assert [(o.t, o.text) for o in run.outputs()] == [(block_end, "after with")]


MAXTASKS = """
name: maxtasksperchild
machine: {cpus: 2}
objects:
  p: {type: pool, workers: 1, maxtasksperchild: 2}
functions:
  f: [{compute: 1ms}]
main:
  - apply_async: {pool: p, function: f, times: 6}
  - close_pool: p
  - join_pool: p
"""


def test_maxtasksperchild_retires_workers_and_starts_replacements() -> None:
    run = run_text(MAXTASKS)
    by_worker: dict[str, list[int]] = {}
    for start in run.jobs("start"):
        by_worker.setdefault(start.task, []).append(start.job)
    assert by_worker == {"p.worker1": [1, 2], "p.worker2": [3, 4], "p.worker3": [5, 6]}
    for old, new in (("p.worker1", "p.worker2"), ("p.worker2", "p.worker3")):
        retired = run.end_of(old)
        assert (retired.exit_code, retired.cause) == (0, "returned")
        replacement = next(e for e in run.created() if e.task == new)
        assert replacement.parent == "main.p.worker_handler"
        assert replacement.t >= retired.t
    assert (run.end_of("p.worker3").exit_code, run.end_of("p.worker3").cause) == (0, "returned")


def test_maxtasksperchild_pool_closes_and_joins() -> None:
    run = run_text(MAXTASKS)
    assert run.end.status == "complete", run.end.detail
    assert run.end_of("main").exit_code == 0


def test_a_task_that_raises_reaches_error_callback_and_apply_exits_1() -> None:
    run = run_text(f"""
name: errors
{machine(4)}
objects:
  p: {{type: pool, workers: 2}}
functions:
  bad: [{{compute: 1ms}}, {{raise: ValueError}}, {{compute: 1ms}}]
  good: [{{compute: 1ms}}]
  cb: [{{print: callback}}]
  on_error: [{{print: error callback}}]
main:
  - apply_async: {{pool: p, function: bad, callback: cb, error_callback: on_error}}
  - apply_async: {{pool: p, function: good, callback: cb, error_callback: on_error}}
  - sleep: 5ms
  - apply: {{pool: p, function: bad}}
  - print: never
""")
    [error] = [j for j in run.jobs("error") if j.job == 1]
    assert error.t == 1 * MS  # the task stops at the raise
    assert [(j.job, j.task) for j in run.jobs("error_callback")] == [(1, HANDLER)]
    assert [(j.job, j.task) for j in run.jobs("callback")] == [(2, HANDLER)]
    assert sorted((o.task, o.text) for o in run.outputs()) == [
        (HANDLER, "callback"),
        (HANDLER, "error callback"),
    ]
    # apply() (like get() of a failed result) re-raises in the caller: exit 1.
    main = run.end_of("main")
    assert (main.exit_code, main.cause) == (1, "exception")
    [last_result] = [j for j in run.jobs("result") if j.job == 3]
    assert main.t == last_result.t
    assert [w.task for w in run.warnings("exception")] == ["main"]


def test_map_over_no_items_never_calls_back() -> None:
    run = run_text(f"""
name: empty-map
{machine(2)}
objects:
  p: {{type: pool, workers: 1}}
functions:
  f: [{{compute: 1ms}}]
  cb: [{{print: callback}}]
main:
  - map_async: {{pool: p, function: f, items: 0, callback: cb}}
  - wait_results: p
  - close_pool: p
  - join_pool: p
""")
    assert [j.job for j in run.jobs("result")] == [1]  # ready at once
    assert run.jobs("start") == []
    assert run.jobs("callback") == [] and run.outputs() == []


def test_worker_handler_spins_while_a_result_waits_unread() -> None:
    """CPython's worker handler waits on the result pipe too, so while a slow
    callback keeps a result unread it loops without blocking: each time the
    switch interval forces the result handler to drop the GIL, the worker
    handler keeps it for a turn (`gil_turn`), which delays the callback."""
    # One queue for both CPUs: the figures are the GIL's alone.
    run = run_text(f"""
name: spin
{machine(2, gil_turn="1ms", balance_delay="0ns")}
objects:
  p: {{type: pool, workers: 1}}
functions:
  task: [{{compute: 1ms}}]
  slow: [{{compute: 20ms}}]
main:
  - apply_async: {{pool: p, function: task, times: 2, callback: slow}}
  - wait_results: p
  - close_pool: p
  - join_pool: p
""")
    # The first result (1 ms) wakes the worker handler too, though the result
    # handler reads it at once: it gets a CPU, finds the GIL held by the
    # callback and asks for it. The second result is unread from 2 ms, so each
    # forced switch (every 5 ms) gives the worker handler a turn of 1 ms.
    handler = "main.p.worker_handler"
    asked = next(t for t, _state, reason in run.sequence(handler) if reason == "gil")
    assert MS <= asked < 2 * MS
    turns = [(a, b) for a, b, _ in run.intervals(handler, "running") if b > a]
    assert turns == [(asked + k * MS, asked + (k + 1) * MS) for k in (5, 11, 17)]
    assert [c.t for c in run.jobs("callback")] == [24 * MS, 44 * MS]
    # It asks for the GIL again after its last turn and gets it 5 ms later; the
    # last result has been read meanwhile (24 ms), so the loop waits again.
    assert (asked + 23 * MS, "blocked", "p.workers") in run.sequence(handler)


def test_the_parents_helper_threads_charge_their_own_per_task_costs() -> None:
    """The task handler spends `pool_dispatch` on each task it writes into the
    workers' pipe; every result written wakes the worker handler's wait(),
    which watches the result pipe, for a turn of its loop (`pool_maintain`),
    even when the result handler reads the result at once. (Tasks shorter than
    a millisecond: no wait is long enough for a step to run cold.)"""
    run = run_text(f"""
name: helpers
{machine(4, pool_dispatch="30us", pool_maintain="50us")}
objects:
  p: {{type: pool, workers: 1}}
functions:
  task: [{{compute: 500us}}]
main:
  - apply_async: {{pool: p, function: task, times: 3}}
  - wait_results: p
  - close_pool: p
  - join_pool: p
""")

    # Three tasks, then a sentinel each for the result handler and the worker (free).
    assert run.time_in("main.p.task_handler", "running") == 3 * 30 * US
    # A turn at its start, and one for each of the three results.
    assert run.time_in("main.p.worker_handler", "running") == 4 * 50 * US


def test_a_step_after_a_wait_of_a_millisecond_runs_cold() -> None:
    """The task handler's and a worker's step cost their cold figures when
    they waited 1 ms or more for it, their busy figures when the work was
    there already (the second task, the sentinel right after the last result)."""
    run = run_text(f"""
name: cold-dispatch
{
        machine(
            4,
            pool_dispatch="5us",
            pool_dispatch_cold="100us",
            pool_worker="10us",
            pool_worker_cold="300us",
        )
    }
objects:
  p: {{type: pool, workers: 1}}
functions:
  work: [{{compute: 1ms}}]
main:
  - sleep: 2ms
  - apply_async: {{pool: p, function: work, times: 2}}
  - wait_results: p
  - close_pool: p
  - join_pool: p
""")

    assert run.time_in("main.p.task_handler", "running") == 100 * US + 5 * US
    # The first task, cold; the second, then the sentinel, each there already.
    assert run.time_in("p.worker1", "running") == 300 * US + MS + 10 * US + MS + 10 * US


def test_an_apply_after_a_long_task_runs_the_result_path_cold() -> None:
    """After a 2 ms task, the result handler's read, the worker handler's turn
    and the caller's wake-up each cost their cold figure, once."""
    run = run_text(f"""
name: cold-result
{machine(4, pool_result_cold="200us", pool_maintain_cold="400us", pool_wake_cold="50us")}
objects:
  p: {{type: pool, workers: 1}}
functions:
  work: [{{compute: 2ms}}]
main:
  - apply: {{pool: p, function: work}}
  - close_pool: p
  - join_pool: p
""")

    assert run.time_in("main.p.result_handler", "running") == 200 * US
    assert run.time_in("main.p.worker_handler", "running") == 400 * US
    assert run.time_in("main", "running") == 50 * US
    finished = run.jobs("finish")[0].t
    # The three share main's GIL: the caller has its result once all have run.
    assert run.jobs("result")[0].t == finished + 650 * US


def test_a_workers_first_job_costs_it_first_job_more() -> None:
    run = run_text(f"""
name: first-job
{machine(2, first_job="300us")}
objects:
  p: {{type: pool, workers: 1}}
functions:
  work: [{{compute: 1ms}}]
main:
  - apply: {{pool: p, function: work}}
  - apply: {{pool: p, function: work}}
  - close_pool: p
  - join_pool: p
""")
    starts = [e.t for e in run.jobs("start")]
    finishes = [e.t for e in run.jobs("finish")]
    took = [end - start for start, end in zip(starts, finishes, strict=True)]
    assert took == [300 * US + MS, MS]
