"""Grids of configurations measured point by point, resumably, and what the measured points say (frontier, choices)."""
