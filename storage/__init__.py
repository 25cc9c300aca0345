"""Runs, samples and comparisons in SQLite or PostgreSQL through SQLAlchemy.

Independent of `engine` and `profilers`: plain values in, plain values out; built in the storage issue.
"""
