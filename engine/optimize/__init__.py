"""Recipe in, faster model and the proof of what it kept out: the pipeline, the recipe, fidelity and the passes."""
