"""The DataStore: tabular resources as typed database tables, searched through CKAN's
``datastore_*`` actions and dumped as CSV, TSV, JSON or XLSX (docs/opendata.md)."""
