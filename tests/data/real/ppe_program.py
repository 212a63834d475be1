"""concurrent.futures.ProcessPoolExecutor: two workers square six numbers."""

from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=2) as ex:
        print(sum(ex.map(square, range(6))))
