"""Coverage-guided fuzzing of what reads untrusted bytes (issue 14). See fuzz/run.py."""
