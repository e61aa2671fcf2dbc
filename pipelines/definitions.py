"""The Dagster Definitions that workspace.yaml loads (placeholder until the pipeline lands)."""

import dagster as dg

defs = dg.Definitions()
