"""The export room: format writers (a table drives them), the equivalence checker, the manifest."""
