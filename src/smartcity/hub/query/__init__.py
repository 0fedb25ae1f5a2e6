"""NGSI-LD query evaluation: the q-language, scopes and geo-queries."""
