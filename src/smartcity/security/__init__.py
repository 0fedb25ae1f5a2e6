"""Security: API keys for the hub (users and passwords for the portal come later)."""
