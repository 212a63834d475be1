"""A daemon killed when the main code ends; a non-daemon child that finishes."""

import time
from multiprocessing import Process


def forever():
    while True:
        time.sleep(0.01)


def finisher():
    time.sleep(0.2)
    print("finisher done")


if __name__ == "__main__":
    Process(name="forever", target=forever, daemon=True).start()
    Process(name="finisher", target=finisher).start()
    print("main code done")
