"""The API reference served by Bulwark itself: ``/docs`` (Swagger UI) and ``/problems/{code}``."""
