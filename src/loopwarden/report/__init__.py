"""Renderers of a :class:`~loopwarden.domain.Report` for people and machines; see ``interface.py``."""
