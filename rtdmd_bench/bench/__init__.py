"""Benchmark support that ships with the package: the GPU stand-in generator and the GPU benchmark."""
