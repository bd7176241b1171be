"""The task ledger: the store interface and the money rules once, then the SQLite and PostgreSQL backends."""
