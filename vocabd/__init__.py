"""vocabd: teach a small on-device speech recognizer one person's voice and vocabulary."""

__version__ = "0.1.0"
