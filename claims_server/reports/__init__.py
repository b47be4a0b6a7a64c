"""A/R aging and revenue-cycle KPIs (HFMA MAP Keys), as JSON and spreadsheet-safe CSV."""
