"""Business logic of tenancy and credentials: portal_*, frame_*, xero_* services."""
