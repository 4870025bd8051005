"""Clearing: positions, margin, fees, settlement prices and delivery assignment."""
