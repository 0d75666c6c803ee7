"""The inbox: what a drop is, how it is taken in, and the ledger of what was taken in."""
