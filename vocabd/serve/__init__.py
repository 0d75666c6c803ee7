"""`vocabd serve`: an OpenAI-compatible transcription endpoint for the workspace's active model."""
