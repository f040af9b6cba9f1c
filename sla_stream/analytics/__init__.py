"""Rollups and reports that read outcomes."""
