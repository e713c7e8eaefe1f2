"""The Ray plumbing: a job's session, its placement, the actors around the plain workers, their groups and the
weight push between them. Ray's roles are thin: every piece runs as a plain object too."""
