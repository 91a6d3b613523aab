"""Figures for people to look at: inspection overlays, plots, contact sheets. Imports stages, never pipelines."""
