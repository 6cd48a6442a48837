"""The showroom till screen (SPEC F-STAFF-1, issue 7): a page in the admin where a seller identifies or registers a
customer, builds a cart, sees what may be paid in points and why, and places the order — one htmx partial per step.

- ``views``: thin admin views (``staff.use_till``); every step answers the workspace partial to an htmx request and
  the whole page otherwise.
- ``state``: the sale in progress, kept in the session (store, customer, cart lines, points to spend, the token that
  makes a double submit place once).
- ``selectors``: the stores a seller may pick, the customer behind a phone or card, their tier, perks and balances,
  the receipt.
- ``services``: the store's till channel and the order placement (``orders.services.order_place``).
"""
