"""Recordings over 30 s: cut on silences into pieces under 30 s, each with its part of the transcript."""
