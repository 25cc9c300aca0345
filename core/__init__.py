"""The leaf every other package stands on: progress and cancel types, latency statistics, growable arrays and
atomic files. It imports nothing of ours and nothing heavy (numpy only), and never Qt."""
