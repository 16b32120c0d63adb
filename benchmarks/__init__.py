"""Benchmarks: this design against two baseline orchestrations, on the same simulated organization."""
