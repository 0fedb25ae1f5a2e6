"""Portal accounts: admins, department-bound editors and moderators (argon2, login limits)."""
