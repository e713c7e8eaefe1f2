"""The unlearning methods: PMC and the baselines it is compared with, each one file behind one interface."""
