"""The probe runtime that runs *inside* traced programs (standard library only).

`recorder` writes one append-only record file per process; `instrument`
patches multiprocessing, threading, `time.sleep` and `sys.stdout` so that every
process of the program records why its tasks block and what they exchange.

Inside a traced program this package is loaded from its files under the alias
`_procsim_rt` by `sim/real/boot/sitecustomize.py`, so it never depends on (or
shadows) a `sim` package of the user's own. Inside procsim it is the ordinary
package `sim.real.runtime`, used for its record format.
"""
