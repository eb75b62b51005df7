#!/usr/bin/env python3
"""movietweetings-100k's items.csv (item,features as genre=..|year=..) as a
MovieLens movies.csv (movieId,title,genres), so that `nextuser prepare --format
csv` can read it until prepare takes the generic features file itself (issue
12).  The year bucket becomes a year in the title: 2012 and 2013 both fall in
the 2010s decade there (a coarser prefix than the data's own).

usage: movietweetings_to_movielens.py ITEMS.csv MOVIES.csv
then:  nextuser prepare --format csv --ratings interactions.csv --items MOVIES.csv --out DIR
"""
import csv
import sys

YEAR = {"pre1960": 1950, "1960s": 1965, "1970s": 1975, "1980s": 1985, "1990s": 1995,
        "2000-04": 2002, "2005-09": 2007, "2010-11": 2010, "2012": 2012, "2013": 2013}

src, dst = sys.argv[1:3]
with open(src, newline="") as f, open(dst, "w", newline="") as g:
    rows = csv.reader(f)
    next(rows)
    out = csv.writer(g)
    out.writerow(["movieId", "title", "genres"])
    for item, features in rows:
        genres, year = [], None
        for kv in filter(None, features.split("|")):
            key, value = kv.split("=", 1)
            if key == "genre":
                genres.append(value)
            elif key == "year":
                year = YEAR.get(value)
        out.writerow([item, f"{item} ({year})" if year else item,
                      "|".join(genres) or "(no genres listed)"])
