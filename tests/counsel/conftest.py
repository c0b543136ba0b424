"""The transcription tests' library (a court, the custodian, counsel) for the counsel page."""

from tests.orders.test_transcription import library_keys, trust_store_file  # noqa: F401
