"""Checks: read an artifact without executing it and yield findings. One sub-package per layer of the loop."""
