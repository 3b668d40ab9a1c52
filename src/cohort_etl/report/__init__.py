"""Report stage: CSV tables, PNG figures and one self-contained HTML page per study."""
