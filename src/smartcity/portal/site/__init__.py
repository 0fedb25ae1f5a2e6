"""The public portal site: page routes and templates (see smartcity.web for the framework)."""
