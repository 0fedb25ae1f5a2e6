"""Storage: the database engine, the schema and its migrations. Nothing here knows NGSI-LD."""
