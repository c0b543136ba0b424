"""The transparency report: what was asked for, under which instrument, and what left."""
