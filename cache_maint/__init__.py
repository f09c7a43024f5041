"""cache-maint: keeps a Glance image cache clean and under its size limit."""
