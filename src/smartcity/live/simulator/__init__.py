"""The city simulator: realistic live data for a Hong Kong-like city, sent through the same
ingestion paths as real devices (MQTT or the HTTP readings endpoint). See docs/simulator.md.

``places`` builds the fleet, ``models`` computes readings, ``provision`` registers devices and
their entities, ``publishers`` send, ``runner`` paces.
"""
