"""The historical archive: every resource's content kept as it changes (DATA.GOV.HK's)."""
