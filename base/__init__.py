"""The bottom layer: errors, typed config and params, the model registry.

Imports nothing of ours.
"""
