"""Weight transfer, both sides: the trainer pushes its weights and the vLLM engines receive them (the shared-memory
backend of vLLM's weight-transfer interface, and where the two sides meet)."""
