"""The training chain as one object: its stage table (`spec`), its record, its stages and the two drivers that
run them (the daemon's queue, a foreground run)."""
