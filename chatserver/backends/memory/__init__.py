"""The in-process backends: a node alone, every seam in its own memory."""
