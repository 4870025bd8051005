"""The sequencer: the single writer that journals and applies every command."""
