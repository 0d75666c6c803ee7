"""Training data for the chain: jargon sentences, their synthetic speech, and the mix with real recordings."""
