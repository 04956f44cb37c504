"""Training loops (SyncNet)."""
