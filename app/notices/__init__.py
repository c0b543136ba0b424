"""Patron notices: telling a patron, when the law allows, that their records were disclosed."""
