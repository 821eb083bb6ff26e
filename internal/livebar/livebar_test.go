package livebar

import (
	"strings"
	"testing"
)

// screen replays the subset of ANSI the renderer uses (cursor up N, carriage
// return, erase to end of screen) and returns the visible lines.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var lines []string
	row := 0
	for len(out) > 0 {
		switch {
		case strings.HasPrefix(out, "\x1b["):
			end := strings.IndexAny(out[2:], "AJ")
			if end < 0 {
				t.Fatalf("unterminated escape in %q", out)
			}
			arg, cmd := out[2:2+end], out[2+end]
			out = out[3+end:]
			switch cmd {
			case 'A':
				n := 0
				for _, c := range arg {
					n = n*10 + int(c-'0')
				}
				row -= n
			case 'J':
				lines = lines[:row]
			}
		case out[0] == '\r':
			out = out[1:]
		default:
			nl := strings.IndexByte(out, '\n')
			if nl < 0 {
				t.Fatalf("line without newline: %q", out)
			}
			if row < len(lines) {
				lines[row] = out[:nl]
			} else {
				lines = append(lines, out[:nl])
			}
			row++
			out = out[nl+1:]
		}
	}
	return lines
}

func TestRendererKeepsBarsBelowLines(t *testing.T) {
	var out strings.Builder
	r := New(&out)
	r.Set("a", "[download]", 10, "| ETA: 9.0s")
	r.Println("INFO: started")
	r.Set("b", "[train]", 50, "")
	r.Set("a", "[download]", 20, "| ETA: 8.0s")
	got := screen(t, out.String())
	want := []string{
		"INFO: started",
		"[download] █████░░░░░░░░░░░░░░░░░░░░░░░  20.0% | ETA: 8.0s",
		"[train] ██████████████░░░░░░░░░░░░░░  50.0%",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRendererFinishesBarsAt100(t *testing.T) {
	var out strings.Builder
	r := New(&out)
	r.Set("a", "[download]", 99, "")
	r.Set("b", "[train]", 10, "")
	r.Set("a", "[download]", 100, "| ETA: 0.0s")
	r.Println("INFO: after")
	got := screen(t, out.String())
	want := []string{
		"[download] ████████████████████████████ 100.0% | ETA: 0.0s",
		"INFO: after",
		"[train] ██░░░░░░░░░░░░░░░░░░░░░░░░░░  10.0%",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.bars) != 1 {
		t.Errorf("%d live bars, want 1", len(r.bars))
	}
}

func TestRendererEndKeepsThePercentReached(t *testing.T) {
	var out strings.Builder
	r := New(&out)
	r.Set("a", "[upload]", 50, "| ETA: 3.0s")
	r.Set("b", "[train]", 10, "")
	r.End("a", "[upload]", "| FAILED")
	r.End("c", "[never]", "| FAILED")
	got := screen(t, out.String())
	want := []string{
		"[upload] ██████████████░░░░░░░░░░░░░░  50.0% | FAILED",
		"[never] ░░░░░░░░░░░░░░░░░░░░░░░░░░░░   0.0% | FAILED",
		"[train] ██░░░░░░░░░░░░░░░░░░░░░░░░░░  10.0%",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.bars) != 1 {
		t.Errorf("%d live bars, want 1", len(r.bars))
	}
}
