package mbox

import (
	"bytes"
	"regexp"
	"strconv"
	"time"
)

// fromLine matches a real separator: "From ADDR Www Mmm d hh:mm...". Only
// such lines split messages, so an unescaped body line like "From time to
// time" stays in its message (the corpus README's rule, and mutt's).
var fromLine = regexp.MustCompile(`^From \S+\s+(Mon|Tue|Wed|Thu|Fri|Sat|Sun) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} +\d{1,2}:\d\d`)

// isFromLine reports whether line (with its line ending) is a separator.
func isFromLine(line []byte) bool {
	return len(line) > 5 && line[0] == 'F' && bytes.HasPrefix(line, []byte("From ")) && fromLine.Match(line)
}

var months = map[string]time.Month{"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}

// fromLineDate reads the timestamp of a separator line. Writers disagree
// on its form ("Tue Mar 04 03:33:20 2003", "Wed Jun 14 18:05 MET 2000",
// Google's "Wed Nov 16 19:39:23 +0000 2022"), so it is read field by field:
// month, day, time, then the first four-digit year and numeric zone after
// it. A named zone (MET) is not guessed at: the time is taken as UTC.
func fromLineDate(line []byte) (time.Time, bool) {
	f := bytes.Fields(line)
	if len(f) < 6 {
		return time.Time{}, false
	}
	f = f[3:] // "From", address, weekday
	mon, ok := months[string(f[0])]
	if !ok {
		return time.Time{}, false
	}
	day, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return time.Time{}, false
	}
	var hh, mm, ss int
	parts := bytes.Split(f[2], []byte(":"))
	if len(parts) < 2 || len(parts) > 3 {
		return time.Time{}, false
	}
	vals := make([]int, len(parts))
	for i, p := range parts {
		if vals[i], err = strconv.Atoi(string(p)); err != nil {
			return time.Time{}, false
		}
	}
	hh, mm = vals[0], vals[1]
	if len(vals) == 3 {
		ss = vals[2]
	}
	year := -1
	loc := time.UTC
	for _, tok := range f[3:] {
		s := string(tok)
		if len(s) == 4 && year < 0 {
			if y, err := strconv.Atoi(s); err == nil {
				year = y
				continue
			}
		}
		if len(s) == 5 && (s[0] == '+' || s[0] == '-') {
			if z, err := strconv.Atoi(s[1:]); err == nil {
				off := (z/100)*3600 + (z%100)*60
				if s[0] == '-' {
					off = -off
				}
				loc = time.FixedZone("", off)
			}
		}
		if year >= 0 && loc != time.UTC {
			break
		}
	}
	if year < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	return time.Date(year, mon, day, hh, mm, ss, 0, loc), true
}
