from tickbook._router import BookListener

class SpreadWatch(BookListener):
    updates: int
    bbo_changes: int
    widest_spread_ticks: int
    last_bid_ticks: int
    last_ask_ticks: int
