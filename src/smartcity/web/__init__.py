"""The shared web framework: languages, templates, static files and HTML responses."""
