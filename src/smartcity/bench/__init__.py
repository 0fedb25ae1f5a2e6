"""Benchmarks (`smartcity bench ...`): real server processes, load from this machine."""
