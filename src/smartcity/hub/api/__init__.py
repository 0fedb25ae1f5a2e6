"""The NGSI-LD HTTP API (``/ngsi-ld/v1``): thin endpoints over the hub's service layer."""
