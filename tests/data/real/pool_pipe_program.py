"""Two Pool workers, each making a Pipe of its own and talking through it."""

from multiprocessing import Pipe, get_context


def chat(word: str) -> str:
    here, there = Pipe()
    here.send(word)
    return there.recv()


if __name__ == "__main__":
    with get_context("fork").Pool(2) as pool:
        print(pool.map(chat, ["a", "b"], chunksize=1))
