"""locations: drop-off points in PostGIS, nearby search, CSV import."""
