"""Deployment bundles: model, recipe, manifest, report and predict.py, written atomically and verifiable."""
