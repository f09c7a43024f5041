"""The admin HTTP API: Glance's image cache API, served by cache-maint."""
