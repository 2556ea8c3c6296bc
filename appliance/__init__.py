"""Tsunagu (つなぐ): the appliance core — config, database, domain, daemon, CLI."""
