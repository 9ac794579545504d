"""Model lifecycle: promotion gate, A/B experiments and shadow runs, attribution, drift and its
monitor, reports. ``promotion``/``experiments``/``attribution``/``drift`` are pure, the rest I/O."""
