"""Corrections that retrain: kept transcripts, their fixes as recordings, unknown words as proposed jargon."""
