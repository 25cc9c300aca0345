"""Self-contained HTML reports of saved runs, comparisons and bundles: one template (template.py), the context every
report shares (context.py), static plots (plots.py), and one module per report (run_report, comparison_report,
bundle_report)."""
