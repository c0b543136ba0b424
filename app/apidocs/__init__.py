"""The API reference served by Bulwark itself: ``/docs`` (Swagger UI) and ``/problems/{code}``."""

from app.apidocs.router import router

__all__ = ["router"]
