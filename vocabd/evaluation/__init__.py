"""Measuring a model: WER raw and normalized, per-term recall and false alarms, worst utterances."""
