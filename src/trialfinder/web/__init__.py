"""The web application and the ClinicalTrials.gov API v2 compatible JSON API.

``create_app(Settings(...))`` builds the FastAPI app; ``trialfinder serve`` runs it with uvicorn.
"""

from trialfinder.web.app import create_app
from trialfinder.web.settings import Settings

__all__ = ["Settings", "create_app"]
