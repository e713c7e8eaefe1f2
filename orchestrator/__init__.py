"""The command line, the job recipe (pipeline.py), batches on Ray Tune, the run folder and who owns it."""
