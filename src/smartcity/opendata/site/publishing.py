"""The editor pages' routes, in one router the app serves behind the site's sessions (they
need to know who is signed in): datasets (``dataset_pages``) and their resources
(``resource_pages``), and hub entity types as live datasets (``live_pages``)."""

from __future__ import annotations

from fastapi import APIRouter

from smartcity.opendata.site import dataset_pages, live_pages, resource_pages
from smartcity.opendata.site.resource_pages import UPLOAD_PATHS

# The other forms of these pages: a dataset's texts in three languages may be as long as the
# Action API takes in a JSON body, more than the site's other forms.
FORM_PATHS = r"/(en|tc|sc)/publish/"

router = APIRouter()
router.include_router(dataset_pages.router)
router.include_router(resource_pages.router)
router.include_router(live_pages.router)

__all__ = ["FORM_PATHS", "UPLOAD_PATHS", "router"]
