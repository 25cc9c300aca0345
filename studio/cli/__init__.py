"""The headless command line: one module per command group, every command a call into studio.usecases."""
