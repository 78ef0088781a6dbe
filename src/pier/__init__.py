"""Pier: a model inference platform that speaks TF Serving and the Open Inference Protocol."""

__version__ = "0.1.0"

__all__ = ["__version__"]
