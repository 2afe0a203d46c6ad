"""A run's config checked as data and turned into parts through fixed registries of names."""
