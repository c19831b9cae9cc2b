"""The foundations every layer uses: training settings with their defaults and bounds, atomic files and their
checksums, file locks, data sources, the evaluation setups, and the half-precision dtypes."""
