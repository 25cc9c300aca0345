"""Measuring a prepared session: cold start, the timed loop, raw samples, adaptive stopping, LoadGen scenarios, max rate."""
