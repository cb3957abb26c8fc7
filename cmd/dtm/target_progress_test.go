package main

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
)

// screen is a fake terminal: it interprets what progressBars writes
// (printable text, \r, \n and the CSI sequences cursor-up "A", erase-line
// "K" and erase-below "J") into the lines a user would see.
type screen struct {
	rows     [][]rune
	row, col int
}

func (s *screen) Write(p []byte) (int, error) {
	rs := []rune(string(p))
	for i := 0; i < len(rs); i++ {
		if s.row >= len(s.rows) {
			s.rows = append(s.rows, nil)
		}
		switch c := rs[i]; c {
		case '\r':
			s.col = 0
		case '\n':
			s.row, s.col = s.row+1, 0
		case '\x1b':
			j := i + 2 // past "\x1b["
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				j++
			}
			n, _ := strconv.Atoi(string(rs[i+2 : j]))
			switch rs[j] {
			case 'A':
				s.row = max(s.row-max(n, 1), 0)
			case 'K':
				s.rows[s.row] = s.rows[s.row][:min(s.col, len(s.rows[s.row]))]
			case 'J':
				s.rows[s.row] = s.rows[s.row][:min(s.col, len(s.rows[s.row]))]
				s.rows = s.rows[:s.row+1]
			}
			i = j
		default:
			line := s.rows[s.row]
			for len(line) <= s.col {
				line = append(line, ' ')
			}
			line[s.col] = c
			s.rows[s.row], s.col = line, s.col+1
		}
	}
	return len(p), nil
}

// text returns the screen's lines, trailing spaces and empty lines removed.
func (s *screen) text() []string {
	var out []string
	for _, r := range s.rows {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestProgressBars_Render(t *testing.T) {
	scr := &screen{}
	clock := &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	p := &progressBars{w: scr, now: clock.now}

	p.Start("download", 3)
	p.Add("download", "Patient", 1)
	p.Done("download")

	p.Start("apply", 1200)
	p.StartTypes("apply", map[string]int64{"Patient": 200, "Observation": 1000})
	clock.t = clock.t.Add(time.Second)
	p.Add("apply", "Patient", 100)
	clock.t = clock.t.Add(500 * time.Millisecond)
	p.Add("apply", "Patient", 100) // finished: its rate stays 200 in 0.5 s
	clock.t = clock.t.Add(500 * time.Millisecond)
	p.Add("apply", "Observation", 400)
	clock.t = clock.t.Add(100 * time.Millisecond)
	p.Add("apply", "Observation", 100) // within 200 ms: not drawn yet
	got := scr.text()
	want := []string{
		"download     [########................]  33%        1/3",
		"  Patient                                                       1",
		"apply        [############............]  50%      600/1200      300/s  ETA 2s",
		"  Observation            [#########...............]  40%      400/1000",
		"  Patient                [########################] 100%      200/200       400/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	t.Run("Done", func(t *testing.T) {
		clock.t = clock.t.Add(900 * time.Millisecond)
		p.Add("apply", "Observation", 500)
		p.Done("apply")
		got := scr.text()
		if n := len(got); n != 5 || !strings.HasPrefix(got[2], "apply        [########################] 100%     1200/1200") ||
			!strings.Contains(got[3], "Observation") || !strings.Contains(got[3], "100%") {
			t.Fatalf("screen after Done:\n%s", strings.Join(got, "\n"))
		}
		p.Add("apply", "Observation", 1) // after Done: ignored
		if len(scr.text()) != 5 {
			t.Fatalf("drawn after Done:\n%s", strings.Join(scr.text(), "\n"))
		}
	})
	t.Run("ManyTypes", func(t *testing.T) {
		totals := map[string]int64{}
		for i := range 12 {
			totals["Type"+strconv.Itoa(10+i)] = 10
		}
		p.Start("deliver", 120)
		p.StartTypes("deliver", totals)
		for i := range 3 {
			p.Add("deliver", "Type"+strconv.Itoa(10+i), 10)
		}
		clock.t = clock.t.Add(time.Second)
		p.Add("deliver", "Type20", 5)
		block := scr.text()[5:]
		if len(block) != 1+maxTypeLines+1 || !strings.HasPrefix(block[1], "  Type20 ") ||
			block[len(block)-1] != "  … 4 more types (3 of all 12 finished)" {
			t.Fatalf("block:\n%s", strings.Join(block, "\n"))
		}
	})
}

func TestProgressLog(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	p := newProgressLog(slog.New(slog.NewTextHandler(&buf, nil)))
	p.now = clock.now
	p.Start("apply", 1000)
	clock.t = clock.t.Add(10 * time.Second)
	p.Add("apply", "Observation", 100) // quiet: less than a minute in
	if buf.Len() != 0 {
		t.Fatalf("logged early: %s", buf.String())
	}
	clock.t = clock.t.Add(time.Minute)
	p.Add("apply", "Observation", 600)
	p.Done("apply")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `msg="pull progress" phase=apply done=700 total=1000 per_second=10`) ||
		!strings.Contains(lines[1], `msg="pull phase done" phase=apply done=700 elapsed=1m10s per_second=10`) {
		t.Fatalf("log:\n%s", buf.String())
	}
}
