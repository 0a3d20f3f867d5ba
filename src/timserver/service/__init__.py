"""Account rules, knowing nothing of HTTP: apps, accounts, rate limits, the clock."""
