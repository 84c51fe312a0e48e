"""Regularizers: one module each, found by discovery (`base.discovered`); see `base.Regularizer` for the hooks."""
