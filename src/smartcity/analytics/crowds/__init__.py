"""Crowds at venues (Kai Tak Sports Park and others): density, flow, Fruin level of service,
the alert ladder and egress time against the Green Guide. See docs/analytics.md, "Crowds"."""
