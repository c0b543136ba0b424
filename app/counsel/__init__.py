"""The counsel office's page: orders presented, approved, used and revoked (admin role)."""

from app.counsel.router import router

__all__ = ["router"]
