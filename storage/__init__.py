"""Files a job writes: atomically (a temporary name, fsync, rename), build-once folders, settings keys."""
