from tickbook._book import OrderBook

Level = tuple[int, int] | None

def apply_raw_events(
    book: OrderBook, events: list[tuple[int, int, int, bytes, bytes]]
) -> list[tuple[int, Level, Level]]: ...
