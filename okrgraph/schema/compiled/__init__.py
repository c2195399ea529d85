"""A compiled read path: a query over plain fields and relations becomes one SQL
statement that builds the response JSON in PostgreSQL (see compiler.py)."""
