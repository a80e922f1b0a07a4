"""Sandbox tables of the business systems the autopilots act on, one module per autopilot
(the property tables shared by maintenance, tenant_comms and compliance are in
`autopilot.models`). Every table is keyed by (tenant_id, id) like the rest."""
