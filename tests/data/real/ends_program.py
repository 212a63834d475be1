"""Processes that end every way: return, raise, exit, crash, killed before they
can record anything, killed and only seen dead by is_alive(); two of one name;
a Pool."""

import os
import signal
import sys
import time
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
    stillborn = ctx.Process(name="stillborn", target=time.sleep, args=(60,))
    stillborn.start()
    stillborn.kill()  # before it runs: a spawn child's interpreter is still starting
    unjoined = ctx.Process(name="unjoined", target=time.sleep, args=(60,))
    unjoined.start()
    os.kill(unjoined.pid, signal.SIGKILL)
    while unjoined.is_alive():  # collects its exit status; it is never joined
        time.sleep(0.001)
    for p in [*procs, stillborn]:
        p.join()
    with ctx.Pool(2) as pool:
        print(pool.map(double, range(4)))
