"""babelfuse: learn from multimodal posts (sentence + picture + voice clip) in one language, use them in many."""

__version__ = "0.1.0"
