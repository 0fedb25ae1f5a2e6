"""Car park analytics: occupancy profiles by hour and weekday, vacancy forecasts, "likely
full on arrival" and alerts when a car park is about to fill (docs/analytics.md, Parking)."""
