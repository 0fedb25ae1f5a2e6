"""The open data portal's web pages (trilingual, server-rendered, usable without JavaScript):
dataset search with facets, dataset and resource pages (with a DataStore table preview),
organisation and group pages. They read the catalogue as the public sees it."""
