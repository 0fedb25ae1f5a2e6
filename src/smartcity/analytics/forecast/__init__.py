"""Short-term traffic speed forecasts: the method, its baselines, the evaluation protocol,
synthetic data to test on, and the serving job (docs/analytics.md, Forecasts)."""
