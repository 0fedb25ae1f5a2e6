"""DCAT-AP 3 catalogues (Turtle, RDF/XML, JSON-LD) and schema.org Dataset markup."""
