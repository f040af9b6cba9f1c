"""Converters from ticketing-system exports to lifecycle events."""
