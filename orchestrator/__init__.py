"""The driver: the PMC loop (pmc.py), the Ray actors around the plain workers, the command line."""
