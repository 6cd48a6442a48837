"""The fast bulk demo generator behind ``manage.py generate_demo`` (issue 7's big-table benchmark).

``rows`` builds the rows of a batch of customers (profiles, points ledger, orders, tiers) as strings, for the
columns ``columns`` names per table; ``loader`` reserves their ids, writes batches (PostgreSQL COPY from worker
processes, batched INSERTs on SQLite) and draws the progress bar; ``vocab`` holds the names, cities and products
it draws from.
"""
