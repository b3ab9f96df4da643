"""Wire formats: one package per format, holding its tables once and its conversions in
both directions. See README.md in this folder for which module owns what."""
