"""The public portal site: page routes and templates (see smartcity.web for the framework)."""

# The largest form body the site accepts (the app's edge enforces it on every site path):
# 5,000 CJK characters, percent-encoded, fit with room to spare.
MAX_FORM_BYTES = 128 * 1024
