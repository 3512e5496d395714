"""Drop the rows with a missing value: raw.csv -> clean.csv (standard library only)."""
import csv

with open("raw.csv", newline="") as f:
    rows = [r for r in csv.DictReader(f) if all(r.values())]
with open("clean.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
