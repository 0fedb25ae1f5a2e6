"""Pages for the analytics: traffic (PeMS results) and forecasts (traffic and parking)."""
