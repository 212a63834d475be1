"""procsim: simulate, run for real, compare and animate Python multiprocessing programs."""

__version__ = "0.1.0"
