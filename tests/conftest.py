"""Test-wide environment, set before any test module imports LightGBM.

LightGBM's OpenMP threads spin while they wait for each other; on a busy 2-core machine
that made training 4-8x slower. The `radar` entry point sets the same.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
