"""The public portal: the blueprint's measures, their progress, KPIs and citizens' feedback."""
