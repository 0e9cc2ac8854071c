"""The REST and trading layer: signed requests, rate accounting, orders, user data, journal."""
