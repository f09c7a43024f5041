"""The API's WSGI middleware, one job per module; ``deploy`` stacks them."""
