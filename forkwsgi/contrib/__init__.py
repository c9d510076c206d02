"""Optional integrations with frameworks; nothing here is imported by the server itself."""
