"""Launch-day discrete-event simulator driving the real pool-sizing policies."""
