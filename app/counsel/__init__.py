"""The counsel office's page: orders presented, approved, used and revoked (admin role)."""
