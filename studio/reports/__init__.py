"""Self-contained HTML reports of saved runs, comparisons and bundles."""
