"""Smart City Blueprint 2.0 as data: measures, strategies, KPIs and the texts around them."""
