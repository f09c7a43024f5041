"""Request handlers: one module per resource, functions named verb_noun."""
