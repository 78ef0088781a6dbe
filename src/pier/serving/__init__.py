"""The data plane: one model server over a model repository."""
