"""Experiments that reproduce the paper's comparisons; each writes a report (see RESULTS.md)."""
