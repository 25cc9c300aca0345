"""Qt-free formatting of results for people, shared by the CLI and the GUI: numbers (one way to write a value and a
missing one), tables, one text module per topic (models, benchmarks, telemetry, runs, sweeps, profiles,
optimization, generation), headline rows the GUI lays out (headlines), and the live views' figures (live_metrics)."""
