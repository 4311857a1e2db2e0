"""The ground floor: what every domain app may use and what imports no app (DESIGN.md, Floors)."""
