"""Legal holds: records an order reached must outlive the store's purge jobs."""
