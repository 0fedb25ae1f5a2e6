"""The ``smartcity`` command line."""
