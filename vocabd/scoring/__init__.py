"""Text scoring: word error rate, normalization (number words, case, punctuation) and term recall."""
