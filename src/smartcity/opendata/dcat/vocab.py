"""The controlled vocabularies DCAT-AP 3 asks for, and how the catalogue's values map to them.

DCAT-AP wants IRIs from the EU Publications Office's authority tables for frequencies, data
themes, languages and file types, and IANA media types for ``dcat:mediaType``. Each mapping
below turns one of the catalogue's own values (``frequency``, a DATA.GOV.HK category, a
resource's ``format``) into those IRIs, with the labels the shapes require of a
``skos:Concept`` (``skos:prefLabel``).
"""

from __future__ import annotations

from rdflib import Namespace

from smartcity.opendata.catalogue.uploads import FILE_TYPES as UPLOAD_TYPES

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCT = Namespace("http://purl.org/dc/terms/")
FOAF = Namespace("http://xmlns.com/foaf/0.1/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
PROV = Namespace("http://www.w3.org/ns/prov#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
SCHEMA = Namespace("https://schema.org/")

EU = "http://publications.europa.eu/resource/authority/"
FREQUENCY = Namespace(EU + "frequency/")
THEME = Namespace(EU + "data-theme/")
THEME_SCHEME = EU + "data-theme"
LANGUAGE = Namespace(EU + "language/")
FILE_TYPE = Namespace(EU + "file-type/")
IANA = "https://www.iana.org/assignments/media-types/"

# The catalogue's ``frequency`` → the EU frequency table.
FREQUENCIES: dict[str, str] = {
    "continuous": "CONT",
    "hourly": "HOURLY",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "fortnightly": "BIWEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "biannual": "ANNUAL_2",
    "annual": "ANNUAL",
    "irregular": "IRREG",
    "as-needed": "AS_NEEDED",
    "never": "NEVER",
    "unknown": "UNKNOWN",
}

# The EU data themes, with their English labels (skos:prefLabel is mandatory on a Concept).
THEMES: dict[str, str] = {
    "AGRI": "Agriculture, fisheries, forestry and food",
    "ECON": "Economy and finance",
    "EDUC": "Education, culture and sport",
    "ENER": "Energy",
    "ENVI": "Environment",
    "GOVE": "Government and public sector",
    "HEAL": "Health",
    "INTR": "International issues",
    "JUST": "Justice, legal system and public safety",
    "REGI": "Regions and cities",
    "SOCI": "Population and society",
    "TECH": "Science and technology",
    "TRAN": "Transport",
}

# DATA.GOV.HK's 18 categories (the catalogue's groups) → the nearest EU data theme.
CATEGORY_THEMES: dict[str, str] = {
    "city-management": "REGI",
    "climate-and-weather": "ENVI",
    "commerce-and-industry": "ECON",
    "development": "REGI",
    "education": "EDUC",
    "employment-and-labour": "SOCI",
    "environment": "ENVI",
    "finance": "ECON",
    "food": "AGRI",
    "health": "HEAL",
    "housing": "SOCI",
    "infrastructure": "REGI",
    "law-and-security": "JUST",
    "miscellaneous": "GOVE",
    "population": "SOCI",
    "recreation-and-culture": "EDUC",
    "social-welfare": "SOCI",
    "transport": "TRAN",
}
# A dataset filed under no category is about the city's government at least.
DEFAULT_THEME = "GOVE"

# The portal's language keys → the EU language table (Chinese scripts are one language there).
LANGUAGES: dict[str, str] = {"en": "ENG", "zh-Hant": "ZHO", "zh-Hans": "ZHO"}
LANGUAGE_LABELS: dict[str, str] = {"ENG": "English", "ZHO": "Chinese"}

# A resource's ``format`` (upper-cased) → the EU file-type table.
EU_FILE_TYPES: dict[str, str] = {
    "CSV": "CSV",
    "TSV": "TSV",
    "TXT": "TXT",
    "JSON": "JSON",
    "GEOJSON": "GEOJSON",
    "JSON-LD": "JSON_LD",
    "JSONLD": "JSON_LD",
    "XML": "XML",
    "RDF": "RDF_XML",
    "TTL": "RDF_TURTLE",
    "KML": "KML",
    "GML": "GML",
    "ICS": "ICS",
    "XLSX": "XLSX",
    "XLS": "XLS",
    "DOCX": "DOCX",
    "ODS": "ODS",
    "KMZ": "KMZ",
    "ZIP": "ZIP",
    "PDF": "PDF",
    "PNG": "PNG",
    "JPEG": "JPEG",
    "GIF": "GIF",
    "PARQUET": "PARQUET",
    "GEOPACKAGE": "GPKG",
    "HTML": "HTML",
}

# A resource's format → its IANA media type, from the upload store's list.
MEDIA_TYPES: dict[str, str] = {fmt.upper(): mime for fmt, mime, _sig in UPLOAD_TYPES.values()}
MEDIA_TYPES["HTML"] = "text/html"


def theme_of(category: str) -> str:
    return CATEGORY_THEMES.get(category, DEFAULT_THEME)
