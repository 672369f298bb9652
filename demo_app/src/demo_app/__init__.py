"""Instrumented demo services for the local observability stack."""

__version__ = "0.1.0"
