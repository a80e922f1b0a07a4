"""One router per resource; each endpoint checks its permission and scopes to the caller's
tenant (another tenant's ids are 404, exactly like missing ones)."""
