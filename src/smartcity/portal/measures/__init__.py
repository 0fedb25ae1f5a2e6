"""The blueprint's measures: storage, progress tracking with roll-up, audit trail, API, CSV."""
