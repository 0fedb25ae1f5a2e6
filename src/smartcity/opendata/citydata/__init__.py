"""Live city datasets: hub entity types and the portal's exports published as datasets whose
resources are generated on request (see ``publish.py``, ``exports.py``)."""
