"""The training room: one module per model family, a registry naming every model, one shared loop."""
