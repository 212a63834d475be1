"""A child that sleeps far longer than any test waits."""

import time
from multiprocessing import Process

if __name__ == "__main__":
    p = Process(name="sleeper", target=time.sleep, args=(60,))
    p.start()
    p.join()
