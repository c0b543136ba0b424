"""The API wiring layer: dependencies every router shares (docs/architecture.md)."""
