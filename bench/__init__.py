"""Benchmarks of the messenger backend against the real stack (`python -m bench`, see README.md)."""
