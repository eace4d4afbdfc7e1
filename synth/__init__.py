"""Generated data in the datasets' own formats, for work without the real files."""
