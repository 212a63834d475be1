"""The SimPy model of processes, threads, IPC and pools under a scheduler.
Imports simpy and the standard library only (besides procsim's own program and
trace modules)."""

from sim.kernel.simulation import SimResult, sim_header, simulate

__all__ = ["SimResult", "sim_header", "simulate"]
