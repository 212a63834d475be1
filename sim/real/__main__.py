"""`python -m sim.real RUN.pickle`: the root process of a real scenario run.

A module of its own so that, under the spawn and forkserver start methods, the
children re-import this small file as their main module while every function
they run lives in `sim.real.executor` and is pickled by that name.
"""

import sys

from sim.real.executor import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
