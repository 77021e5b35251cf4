"""Curation: the review queue, decisions, the audit trail, reverts, suggestions and versions."""
