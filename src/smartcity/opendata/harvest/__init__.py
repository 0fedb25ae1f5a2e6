"""Harvesting: other CKAN catalogues (DATA.GOV.HK's three languages merged) and DCAT ones."""
