"""Speech recognition: model loading (hub, local folder or offline build), transcription, labels."""
