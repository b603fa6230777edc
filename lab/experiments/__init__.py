"""Experiments run in the lab: each turns a prepared topology into an Observation."""
