"""The open data portal: DATA.GOV.HK's catalogue on this platform, spoken through CKAN's API.

``catalogue/`` holds organisations, groups, datasets, resources, tags, licences, memberships
and the audit trail; ``search/`` the full-text index (three languages, in the database, on
both backends); ``ckan/`` the Action API (``/api/3/action/...`` and DATA.GOV.HK's
``/{en,tc,sc}-data/api/3/action/...``). See docs/opendata.md.
"""
