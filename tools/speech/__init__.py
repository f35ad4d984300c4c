"""Speech tools: synthetic speech data (espeak-ng), viseme targets, augmentation, evaluation (see README.md)."""
