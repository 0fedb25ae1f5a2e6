"""The Temporal API (clauses 5.6.11-5.6.16, 5.7.3-5.7.4): the temporal evolution of entities.

``repository`` holds the SQL, ``service`` the operations, ``render`` the representations.
Deliberately empty of imports: ``history.record`` imports ``temporal.repository`` to keep the
hourly rollup current, and must not pull the service layer in with it.
"""
