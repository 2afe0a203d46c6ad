"""A sweep read back: its runs' records, rliable statistics, tables and figures."""
