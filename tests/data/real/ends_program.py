"""Processes that end every way: return, raise, exit, crash; two of one name; a Pool."""

import os
import signal
import sys
from multiprocessing import get_context


def fine():
    pass


def raises():
    raise ValueError("bad input")


def exits():
    os._exit(3)


def crashes():
    os.kill(os.getpid(), signal.SIGKILL)


def double(x):
    return 2 * x


if __name__ == "__main__":
    ctx = get_context(sys.argv[1] if len(sys.argv) > 1 else "fork")
    procs = [
        ctx.Process(name="dup", target=fine),
        ctx.Process(name="dup", target=fine),
        ctx.Process(name="raiser", target=raises),
        ctx.Process(name="exiter", target=exits),
        ctx.Process(name="crasher", target=crashes),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    with ctx.Pool(2) as pool:
        print(pool.map(double, range(4)))
