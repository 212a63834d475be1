"""The reference text's Pool example, as written there (4 workers, 10,000 tasks)."""

from multiprocessing import Pool


def func(i):
    return i + 1


def callback_func(i):
    print(i)


if __name__ == "__main__":
    p = Pool(4)
    for i in range(10000):
        p.apply_async(func, args=(i,), callback=callback_func)
    p.close()
    p.join()
