"""Import path of Tensorlake Applications, served by Trellis so Tensorlake code runs unchanged."""
